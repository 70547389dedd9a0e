using System;
using System.Globalization;
using System.Net.Sockets;
using Daemon.Handover;
using Daemon.Interop;
using Daemon.Logging;

namespace Daemon.Systemd;

/// <summary>
/// systemd socket activation (sd_listen_fds(3)): the listening sockets systemd passed as
/// descriptors 3 and up, for this process only, offered to <see cref="ListenerSet.Listen"/> by name
/// (LISTEN_FDNAMES) or by local address.
/// </summary>
internal static class SocketActivation
{
    /// <summary>SD_LISTEN_FDS_START: the first passed descriptor.</summary>
    public const int FirstDescriptor = 3;

    private const string ListenPid = "LISTEN_PID";
    private const string ListenFds = "LISTEN_FDS";
    private const string ListenFdNames = "LISTEN_FDNAMES";

    /// <summary>
    /// Takes the sockets systemd passed to this process into <paramref name="into"/>, marks them
    /// close-on-exec and removes the LISTEN_* variables, so no program the daemon starts sees them.
    /// A LISTEN_PID of another process, or none, means none were passed to us: nothing is touched.
    /// </summary>
    /// <returns>How many sockets were passed.</returns>
    public static int TakePassedSockets(ListenerSet into, DaemonLog log)
    {
        string? pid = Environment.GetEnvironmentVariable(ListenPid);
        string? count = Environment.GetEnvironmentVariable(ListenFds);
        string[] names = (Environment.GetEnvironmentVariable(ListenFdNames) ?? "").Split(':');
        if (!int.TryParse(pid, NumberStyles.None, CultureInfo.InvariantCulture, out int listenPid) || listenPid != Environment.ProcessId
            || !int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out int passed) || passed <= 0)
        {
            return 0;
        }

        Posix.UnsetEnvironment(ListenPid);
        Posix.UnsetEnvironment(ListenFds);
        Posix.UnsetEnvironment(ListenFdNames);
        for (int i = 0; i < passed; i++)
        {
            int fd = FirstDescriptor + i;
            string name = i < names.Length && names[i].Length > 0 ? names[i] : "unknown";
            _ = Posix.SetCloseOnExec(fd, true);
            var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
            into.Inherit(name, socket, ownsFile: false);
            log.Line($"systemd passed listener '{name}' on {ListenerSet.Describe(socket.LocalEndPoint)}");
        }

        return passed;
    }
}
