using System;
using System.Net.Sockets;
using Daemon.Interop;
using Daemon.PidFiles;

namespace Daemon.Handover;

/// <summary>
/// The next generation's end of a zero-downtime restart: it connects to the running daemon's
/// control socket, checks that the peer is the daemon the pid file names, and receives its listeners.
/// </summary>
internal sealed class Predecessor : IPredecessor
{
    private readonly Socket _connection;

    private Predecessor(Socket connection, int pid)
    {
        _connection = connection;
        Pid = pid;
    }

    /// <summary>The running daemon's pid.</summary>
    public int Pid { get; }

    /// <summary>
    /// Connects to the daemon that holds <paramref name="pidFile"/> and takes its listeners into
    /// <paramref name="into"/>; null when no daemon runs (a plain start, then). The peer must be the
    /// process the kernel names as the pid file's lock holder, running as root, as this process's
    /// user, or as <paramref name="runsAs"/>: a daemon started by root with <c>--user</c> runs as
    /// that user, and so will this one.
    /// </summary>
    /// <exception cref="DaemonException">A daemon runs but does not hand over.</exception>
    public static Predecessor? Connect(string pidFile, ListenerSet into, uint? runsAs)
    {
        PidFileState state = PidFileStore.Instance.Inspect(pidFile);
        if (!state.NamesItsHolder)
        {
            return null;
        }

        var connection = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            connection.Connect(HandoverProtocol.EndPoint(pidFile));

            // Anyone can bind an abstract name first: only the daemon the pid file names is trusted.
            int fd = (int)connection.Handle;
            if (Posix.PeerCredentials(fd, out int peer, out uint uid, out int errno) < 0)
            {
                throw DaemonException.FromErrno("cannot read the running daemon's credentials", errno);
            }

            if (peer != state.Holder)
            {
                throw new DaemonException($"the control socket belongs to pid {peer}, not to the running daemon (pid {state.Holder})");
            }

            if (uid != 0 && uid != Posix.GetEffectiveUid() && uid != runsAs)
            {
                throw new DaemonException($"the running daemon (pid {peer}) runs as uid {uid}, which is neither root, nor this user, nor --user's");
            }

            connection.Send(HandoverProtocol.Format(HandoverProtocol.Handover));
            byte[] buffer = new byte[16 * 1024];
            long n = Posix.ReceiveWithDescriptors(fd, buffer, HandoverProtocol.MaxListeners, out int[] fds, out errno);
            if (n <= 0)
            {
                CloseAll(fds);
                throw n < 0 ? DaemonException.FromErrno("cannot receive the listeners", errno) : new DaemonException($"pid {peer} closed the control socket");
            }

            (string kind, string argument) = HandoverProtocol.Parse(buffer.AsSpan(0, (int)n));
            string[] names = argument.Length == 0 ? [] : argument.Split('\n');
            if (kind != HandoverProtocol.Listeners || names.Length != fds.Length)
            {
                CloseAll(fds);
                throw new DaemonException(kind == HandoverProtocol.Refused ? $"pid {peer} refused the handover: {argument}" : $"pid {peer} answered '{kind}'");
            }

            // Each must be a listening socket: .NET wraps any descriptor in a Socket without a word.
            int notListening = Array.FindIndex(fds, fd => !Posix.IsListeningSocket(fd));
            if (notListening >= 0)
            {
                CloseAll(fds);
                throw new DaemonException($"pid {peer} handed over '{names[notListening]}', which is not a listening socket");
            }

            for (int i = 0; i < fds.Length; i++)
            {
                into.Inherit(names[i], new Socket(new SafeSocketHandle(fds[i], ownsHandle: true)));
            }

            return new Predecessor(connection, peer);
        }
        catch (SocketException e)
        {
            connection.Dispose();
            throw new DaemonException($"cannot reach the running daemon's control socket: {e.Message}", e);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>Tells the running daemon that this one holds the pid file: it stops accepting and drains.</summary>
    /// <exception cref="DaemonException">It did not agree (it was being stopped, or went away).</exception>
    public void Commit(int pid)
    {
        try
        {
            _connection.Send(HandoverProtocol.Format(HandoverProtocol.Committed, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            byte[] buffer = new byte[4096];
            int n = _connection.Receive(buffer);
            (string kind, string argument) = n > 0 ? HandoverProtocol.Parse(buffer.AsSpan(0, n)) : ("", "");
            if (kind != HandoverProtocol.Ok)
            {
                throw new DaemonException(kind == HandoverProtocol.Abort ? $"pid {Pid} did not hand over: {argument}" : $"pid {Pid} went away during the handover");
            }
        }
        catch (SocketException e)
        {
            throw new DaemonException($"pid {Pid} went away during the handover: {e.Message}", e);
        }
    }

    public void Dispose() => _connection.Dispose();

    /// <summary>True when the running daemon behind <paramref name="pidFile"/> answers on its control socket.</summary>
    public static bool Answers(string pidFile)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            probe.Connect(HandoverProtocol.EndPoint(pidFile));
            probe.Send(HandoverProtocol.Format(HandoverProtocol.Probe));
            byte[] buffer = new byte[256];
            int n = probe.Receive(buffer);
            return n > 0 && HandoverProtocol.Parse(buffer.AsSpan(0, n)).Kind == HandoverProtocol.Ok;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static void CloseAll(int[] fds)
    {
        foreach (int fd in fds)
        {
            Posix.Close(fd);
        }
    }
}
