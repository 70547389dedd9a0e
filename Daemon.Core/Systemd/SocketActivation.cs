using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net.Sockets;
using Daemon.Handover;
using Daemon.Interop;
using Daemon.Logging;

namespace Daemon.Systemd;

/// <summary>
/// systemd socket activation (sd_listen_fds(3)): the listening sockets systemd passed as
/// descriptors 3 and up, for this process only, offered to <see cref="ListenerSet.Listen"/> by name
/// (LISTEN_FDNAMES) or by local address. Every passed descriptor is checked before any is taken:
/// one that is not a listening stream socket refuses the start, and then no descriptor is touched,
/// since a wrong LISTEN_FDS would otherwise make us close the runtime's own files.
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
    /// <exception cref="DaemonException">The variables are for us but do not fit what was passed.</exception>
    public static void TakePassedSockets(ListenerSet into, DaemonLog log)
    {
        IReadOnlyList<(string Name, int Fd)> passed = Check(
            Environment.GetEnvironmentVariable(ListenPid),
            Environment.GetEnvironmentVariable(ListenFds),
            Environment.GetEnvironmentVariable(ListenFdNames),
            Environment.ProcessId,
            FirstDescriptor);
        if (passed.Count == 0)
        {
            return;
        }

        Posix.UnsetEnvironment(ListenPid);
        Posix.UnsetEnvironment(ListenFds);
        Posix.UnsetEnvironment(ListenFdNames);
        Adopt(passed, into, log);
    }

    /// <summary>
    /// The descriptors the variables pass to process <paramref name="processId"/>, by name, each
    /// checked to be a listening stream socket; none when LISTEN_PID names another process or is
    /// unset (sd_listen_fds does the same). Reads descriptors, changes none.
    /// </summary>
    /// <param name="listenPid">LISTEN_PID as the environment gives it.</param>
    /// <param name="listenFds">LISTEN_FDS as the environment gives it.</param>
    /// <param name="listenFdNames">LISTEN_FDNAMES as the environment gives it.</param>
    /// <param name="processId">This process (the environment's reader).</param>
    /// <param name="first">The first passed descriptor: 3, except in tests.</param>
    /// <exception cref="DaemonException">The count, the names or a descriptor do not fit.</exception>
    internal static IReadOnlyList<(string Name, int Fd)> Check(string? listenPid, string? listenFds, string? listenFdNames, int processId, int first)
    {
        if (listenFds is null
            || !int.TryParse(listenPid, NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
            || pid != processId)
        {
            return [];
        }

        if (!int.TryParse(listenFds, NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count > int.MaxValue - first)
        {
            throw new DaemonException($"socket activation: LISTEN_FDS='{listenFds}' is not a count of descriptors");
        }

        if (count == 0)
        {
            return [];
        }

        // Unset or empty: every descriptor is "unknown", as sd_listen_fds_with_names says.
        string[] names = string.IsNullOrEmpty(listenFdNames) ? [] : listenFdNames.Split(':');
        if (names.Length != 0 && names.Length != count)
        {
            throw new DaemonException($"socket activation: LISTEN_FDNAMES names {names.Length} descriptor(s), but LISTEN_FDS passes {count}");
        }

        var passed = new List<(string, int)>();
        for (int i = 0; i < count; i++)
        {
            string name = names.Length > 0 && names[i].Length > 0 ? names[i] : "unknown";
            int fd = first + i;
            string? wrong = WhatIsWrong(fd);
            if (wrong is not null)
            {
                throw new DaemonException($"socket activation: LISTEN_FDS={count}, but descriptor {fd} ('{name}') {wrong}; nothing was taken");
            }

            passed.Add((name, fd));
        }

        return passed;
    }

    /// <summary>
    /// Takes checked descriptors: close-on-exec, then kept by <paramref name="into"/> until claimed.
    /// Those this daemon put in systemd's fd store come back under their listener's name.
    /// </summary>
    internal static void Adopt(IReadOnlyList<(string Name, int Fd)> passed, ListenerSet into, DaemonLog log)
    {
        foreach ((string name, int fd) in passed)
        {
            _ = Posix.SetCloseOnExec(fd, true);
            var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
            if (FileDescriptorStore.ListenerName(name) is { } stored)
            {
                into.Inherit(stored, socket, InheritedFrom.FileDescriptorStore);
                log.Line($"systemd passed listener '{stored}' back from its fd store, on {ListenerSet.Describe(socket.LocalEndPoint)}");
            }
            else
            {
                into.Inherit(name, socket, InheritedFrom.SocketUnit);
                log.Line($"systemd passed listener '{name}' on {ListenerSet.Describe(socket.LocalEndPoint)}");
            }
        }
    }

    /// <summary>Why <paramref name="fd"/> is not a listening stream socket, or null when it is one.</summary>
    private static string? WhatIsWrong(int fd)
    {
        if (Posix.Fstat(fd, out FileStatus status, out int errno) < 0)
        {
            return $"cannot be examined: {Posix.Describe(errno)}";
        }

        if (status.Type != FileType.Socket)
        {
            return $"is {Describe(status.Type)}, not a socket";
        }

        if (Posix.SocketType(fd, out int type, out errno) < 0)
        {
            return $"is a socket whose type cannot be read: {Posix.Describe(errno)}";
        }

        if (type != Posix.SOCK_STREAM)
        {
            return type == Posix.SOCK_DGRAM ? "is a datagram socket, not a stream socket" : $"is a socket of type {type}, not a stream socket";
        }

        return Posix.IsListeningSocket(fd) ? null : "is a stream socket that is not listening";
    }

    private static string Describe(FileType type) => type switch
    {
        FileType.RegularFile => "a regular file",
        FileType.Directory => "a directory",
        FileType.Fifo => "a pipe",
        FileType.CharacterDevice => "a character device",
        FileType.BlockDevice => "a block device",
        FileType.SymbolicLink => "a symbolic link",
        _ => $"a file of type 0x{(int)type:x}",
    };
}
