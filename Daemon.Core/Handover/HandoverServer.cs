using System;
using System.Linq;
using System.Net.Sockets;
using System.Threading;
using Daemon.Interop;
using Daemon.Logging;

namespace Daemon.Handover;

/// <summary>
/// The running daemon's end of a zero-downtime restart: a control socket on which the next
/// generation asks for the listeners. Only root or the daemon's own user may take them (checked by
/// peer credentials: an abstract socket has no permissions of its own). One handover at a time.
/// </summary>
internal sealed class HandoverServer : IDisposable
{
    private static readonly TimeSpan _firstMessage = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan _lastWords = TimeSpan.FromSeconds(1);
    private readonly Socket _socket;
    private readonly ListenerSet _listeners;
    private readonly DaemonLog _log;
    private readonly Action<int> _committed;
    private readonly Action<int> _failedAfterTakeover;
    private readonly Thread _thread;
    private volatile bool _closed;
    private readonly object _decision = new();
    private volatile string? _stopping;
    private bool _handedOver;

    private HandoverServer(Socket socket, ListenerSet listeners, DaemonLog log, Action<int> committed, Action<int> failedAfterTakeover)
    {
        _socket = socket;
        _listeners = listeners;
        _log = log;
        _committed = committed;
        _failedAfterTakeover = failedAfterTakeover;
        _thread = new Thread(Serve) { IsBackground = true, Name = "daemon.net handover" };
    }

    /// <summary>
    /// Opens the control socket of the daemon whose pid file is <paramref name="pidFile"/>; null,
    /// said in the log, when it cannot (then <c>restart</c> stops and starts).
    /// </summary>
    /// <param name="pidFile">The pid file, whose path names the socket.</param>
    /// <param name="listeners">What is handed over.</param>
    /// <param name="log">The daemon's log.</param>
    /// <param name="committed">Called with the next generation's pid once it holds the pid file: stop accepting.</param>
    /// <param name="failedAfterTakeover">Called when a next generation that had taken the pid file went away.</param>
    public static HandoverServer? Open(string pidFile, ListenerSet listeners, DaemonLog log, Action<int> committed, Action<int> failedAfterTakeover)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            socket.Bind(HandoverProtocol.EndPoint(pidFile));
            socket.Listen(4);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            log.Line(LogSeverity.Warning, $"no zero-downtime restart: cannot open the control socket ({e.Message}); restart will stop, then start");
            return null;
        }

        var server = new HandoverServer(socket, listeners, log, committed, failedAfterTakeover);
        server._thread.Start();
        return server;
    }

    /// <summary>
    /// From now on a handover is refused with <paramref name="reason"/>, and one under way is
    /// aborted. False when one was committed first: then the next generation has taken over.
    /// </summary>
    public bool Refuse(string reason)
    {
        lock (_decision)
        {
            if (_handedOver)
            {
                return false;
            }

            _stopping = reason;
            return true;
        }
    }

    public void Dispose()
    {
        _closed = true;
        _socket.Dispose();
    }

    private void Serve()
    {
        while (!_closed)
        {
            Socket connection;
            try
            {
                connection = _socket.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            using (connection)
            {
                try
                {
                    if (Converse(connection))
                    {
                        return;
                    }
                }
                catch (Exception e)
                {
                    // Whatever went wrong with one handover (a peer gone before the listeners were
                    // sent, say), the daemon serves on: this thread must never take the process down.
                    _log.Line(LogSeverity.Warning, $"handover failed: {e.Message}");
                }
            }
        }
    }

    /// <summary>
    /// A last answer, read to the end: closing a Unix socket with a message of the peer's still
    /// unread resets the connection, and the peer would lose the answer.
    /// </summary>
    private static void Answer(Socket connection, string kind, string reason)
    {
        connection.Send(HandoverProtocol.Format(kind, reason));
        connection.Shutdown(SocketShutdown.Send);
        connection.ReceiveTimeout = (int)_lastWords.TotalMilliseconds;
        byte[] rest = new byte[4096];
        try
        {
            while (connection.Receive(rest) > 0)
            {
            }
        }
        catch (SocketException)
        {
            // A peer that keeps its end open past the last words: it has the answer all the same.
        }
    }

    /// <summary>One connection: true once the listeners are handed over for good.</summary>
    private bool Converse(Socket connection)
    {
        int fd = (int)connection.Handle;
        if (Posix.PeerCredentials(fd, out int peer, out uint uid, out int errno) < 0)
        {
            throw DaemonException.FromErrno("cannot read the peer's credentials", errno);
        }

        // Anyone may connect to an abstract socket: a stranger is answered before it can say a word,
        // so it can neither take the listeners nor hold this one-at-a-time channel.
        uint self = Posix.GetEffectiveUid();
        if (uid != 0 && uid != self)
        {
            _log.Line(LogSeverity.Warning, $"handover refused to pid {peer}: uid {uid} is neither root nor the daemon's (uid {self})");
            Answer(connection, HandoverProtocol.Refused, $"uid {uid} may not take the listeners");
            return false;
        }

        byte[] buffer = new byte[4096];
        connection.ReceiveTimeout = (int)_firstMessage.TotalMilliseconds;
        int n = connection.Receive(buffer);
        connection.ReceiveTimeout = 0;
        (string kind, _) = HandoverProtocol.Parse(buffer.AsSpan(0, n));
        if (kind == HandoverProtocol.Probe)
        {
            connection.Send(HandoverProtocol.Format(HandoverProtocol.Ok, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            return false;
        }

        if (kind != HandoverProtocol.Handover)
        {
            return false;
        }

        if (_stopping is { } reason)
        {
            Answer(connection, HandoverProtocol.Refused, reason);
            return false;
        }

        var listeners = _listeners.Own;
        string names = string.Join('\n', listeners.Select(l => l.Name));
        int[] fds = listeners.Select(l => (int)l.Socket.Handle).ToArray();
        if (Posix.SendWithDescriptors(fd, HandoverProtocol.Format(HandoverProtocol.Listeners, names), fds, out errno) < 0)
        {
            throw DaemonException.FromErrno("cannot hand the listeners over", errno);
        }

        _log.Line($"handing {fds.Length} listener(s) over to pid {peer}");
        n = connection.Receive(buffer);
        (kind, _) = n > 0 ? HandoverProtocol.Parse(buffer.AsSpan(0, n)) : ("", "");
        if (kind != HandoverProtocol.Committed)
        {
            // The next generation failed or went away: this one keeps serving, and keeps its pid file.
            _log.Line(LogSeverity.Warning, $"handover to pid {peer} did not complete; still serving");
            _failedAfterTakeover(peer);
            return false;
        }

        // A stop and a commit arriving together: exactly one of them wins, under one lock.
        // The daemon learns its successor inside the same lock: a stop that lost sees it already.
        string? late;
        lock (_decision)
        {
            late = _stopping;
            _handedOver = late is null;
            if (_handedOver)
            {
                // The name goes first: the next generation opens its own control socket once told OK.
                _closed = true;
                _socket.Dispose();
                _committed(peer);
            }
        }

        if (late is not null)
        {
            Answer(connection, HandoverProtocol.Abort, late);
            return false;
        }

        connection.Send(HandoverProtocol.Format(HandoverProtocol.Ok));
        return true;
    }
}
