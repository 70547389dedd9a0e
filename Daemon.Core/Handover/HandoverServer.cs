using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net.Sockets;
using System.Threading;
using Daemon.Interop;
using Daemon.Logging;

namespace Daemon.Handover;

/// <summary>
/// The running daemon's end of a zero-downtime restart: its control channel, on which the next
/// generation asks for the listeners. Only the authority that started the daemon may take them:
/// root, and the daemon's own user when it never changed user (checked by peer credentials as of
/// the peer's connect, so a next generation asks while it is still root). Anyone else is refused
/// before it can say a word, and costs one counted log line per interval. Each trusted peer is
/// served on its own thread with deadlines; one handover at a time, others are told BUSY.
/// </summary>
internal sealed class HandoverServer : IDisposable
{
    private const int MaxConversations = 8;
    private static readonly TimeSpan _firstMessage = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan _longestHandover = TimeSpan.FromMinutes(10);
    private readonly Socket _socket;
    private readonly ListenerSet _listeners;
    private readonly DaemonLog _log;
    private readonly uint[] _trusted;
    private readonly RefusalLog _refusals;
    private readonly Action<int, IReadOnlyCollection<string>> _committed;
    private readonly Action<int> _failedAfterTakeover;
    private readonly Func<string?>? _supervision;
    private readonly Thread _thread;
    private readonly object _decision = new();
    private volatile bool _closed;
    private volatile bool _disposed;
    private string? _stopping;
    private bool _busy;
    private Socket? _turn;
    private bool _handedOver;
    private int _conversations;

    private HandoverServer(Socket socket, ListenerSet listeners, DaemonLog log, uint[] trusted, Action<int, IReadOnlyCollection<string>> committed, Action<int> failedAfterTakeover, Func<string?>? supervision)
    {
        _supervision = supervision;
        _socket = socket;
        _listeners = listeners;
        _log = log;
        _trusted = trusted;
        _refusals = new RefusalLog(log, trusted);
        _committed = committed;
        _failedAfterTakeover = failedAfterTakeover;
        _thread = new Thread(AcceptLoop) { IsBackground = true, Name = "daemon.net control" };
    }

    /// <summary>
    /// Opens a control channel for the daemon whose pid file is <paramref name="pidFile"/>, without
    /// answering on it yet (see <see cref="Serve"/>); null, said in the log, when it cannot (then
    /// <c>restart</c> stops and starts).
    /// </summary>
    /// <param name="pidFile">The pid file, whose folder and name give the channel's prefix.</param>
    /// <param name="listeners">What is handed over.</param>
    /// <param name="log">The daemon's log.</param>
    /// <param name="startedBy">The effective uid that started the daemon, before any <c>--user</c>.</param>
    /// <param name="changesUser">True when the daemon will drop to another user: then only root is trusted.</param>
    /// <param name="committed">Called with the next generation's pid and the names it adopted, once it holds the pid file: stop accepting.</param>
    /// <param name="failedAfterTakeover">Called when a next generation that had taken the pid file went away.</param>
    /// <param name="supervision">
    /// What a PROBE's answer adds when a service manager supervises this daemon
    /// (<see cref="HandoverProtocol.Supervised"/>), or null when none does.
    /// </param>
    public static HandoverServer? Open(string pidFile, ListenerSet listeners, DaemonLog log, uint startedBy, bool changesUser, Action<int, IReadOnlyCollection<string>> committed, Action<int> failedAfterTakeover, Func<string?>? supervision = null)
    {
        Socket socket;
        try
        {
            socket = ControlChannel.Open(pidFile, 64);
        }
        catch (SocketException e)
        {
            log.Line(LogSeverity.Warning, $"no zero-downtime restart: cannot open the control socket ({e.Message}); restart will stop, then start");
            return null;
        }

        uint[] trusted = startedBy == 0 || changesUser ? [0] : [0, startedBy];
        return new HandoverServer(socket, listeners, log, trusted, committed, failedAfterTakeover, supervision);
    }

    /// <summary>Starts answering: connections made before are in the backlog and are answered now.</summary>
    public void Serve() => _thread.Start();

    /// <summary>
    /// From now on a handover is refused with <paramref name="reason"/>, and one under way is
    /// aborted, unless one was decided first (then the next generation has taken over).
    /// </summary>
    public void Refuse(string reason)
    {
        lock (_decision)
        {
            _stopping = reason;
            if (!_handedOver && _turn is not null)
            {
                // Said now, not when it commits: a next generation that finds this daemon gone
                // must know it was stopped, not killed (then it would serve on, against the stop).
                _ = HandoverProtocol.TrySend(_turn, HandoverProtocol.Abort, reason);
            }
        }
    }

    public void Dispose()
    {
        _disposed = _closed = true;
        _socket.Dispose();
        _refusals.Dispose();
    }

    private void AcceptLoop()
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
                if (_closed)
                {
                    return;
                }

                // EMFILE and the like: the daemon serves on; try again shortly.
                Thread.Sleep(50);
                continue;
            }

            try
            {
                Admit(connection);
            }
            catch (Exception e)
            {
                // Whatever went wrong with one peer, the daemon serves on: never take the process down.
                connection.Dispose();
                _log.Line(LogSeverity.Warning, $"control socket: {e.Message}");
            }
        }
    }

    /// <summary>Decides at once, from the peer's credentials, whether it is heard at all.</summary>
    private void Admit(Socket connection)
    {
        if (Posix.PeerCredentials((int)connection.Handle, out int peer, out uint uid, out int errno) < 0)
        {
            connection.Dispose();
            throw DaemonException.FromErrno("cannot read a peer's credentials", errno);
        }

        if (!_trusted.Contains(uid))
        {
            // Answered without waiting: a stranger can neither hold a thread nor the channel.
            // Logged first, so that whoever reads the refusal finds it in the log too.
            _refusals.Refused(peer, uid);
            connection.Blocking = false;
            _ = HandoverProtocol.TrySend(connection, HandoverProtocol.Refused, $"uid {uid} may not restart this daemon");
            HandoverProtocol.CloseReadingWhatCame(connection);
            return;
        }

        if (Interlocked.Increment(ref _conversations) > MaxConversations)
        {
            Interlocked.Decrement(ref _conversations);
            connection.Blocking = false;
            _ = HandoverProtocol.TrySend(connection, HandoverProtocol.Busy);
            HandoverProtocol.CloseReadingWhatCame(connection);
            return;
        }

        var thread = new Thread(() => Converse(connection, peer)) { IsBackground = true, Name = "daemon.net handover" };
        try
        {
            thread.Start();
        }
        catch
        {
            Interlocked.Decrement(ref _conversations);
            throw;
        }
    }

    private void Converse(Socket connection, int peer)
    {
        bool holdsTheTurn = false;
        try
        {
            (string kind, string argument) = HandoverProtocol.Receive(connection, Environment.TickCount64 + (long)_firstMessage.TotalMilliseconds);
            if (kind == HandoverProtocol.Probe)
            {
                string answer = string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessId} {_listeners.Own.Count}");
                _ = HandoverProtocol.TrySend(connection, HandoverProtocol.Ok, _supervision?.Invoke() is { } supervised ? $"{answer} {supervised}" : answer);
                return;
            }

            if (kind != HandoverProtocol.Handover)
            {
                return;
            }

            lock (_decision)
            {
                if (_stopping is { } reason)
                {
                    _ = HandoverProtocol.TrySend(connection, HandoverProtocol.Refused, reason);
                    return;
                }

                if (_busy || _handedOver)
                {
                    _ = HandoverProtocol.TrySend(connection, HandoverProtocol.Busy);
                    return;
                }

                _busy = holdsTheTurn = true;
                _turn = connection;
            }

            HandOver(connection, peer, Deadline(argument));
        }
        catch (Exception e)
        {
            // Whatever went wrong with one peer, this thread never takes the daemon down.
            if (holdsTheTurn && !_disposed)
            {
                _log.Line(LogSeverity.Warning, $"handover to pid {peer} did not complete ({e.Message}); this daemon serves on");
                TakeBack(peer);
            }
        }
        finally
        {
            if (holdsTheTurn)
            {
                lock (_decision)
                {
                    _busy = false;
                    _turn = null;
                }
            }

            connection.Dispose();
            Interlocked.Decrement(ref _conversations);
        }
    }

    /// <summary>The pid file back from a next generation that had taken it over and went away; never throws.</summary>
    private void TakeBack(int peer)
    {
        try
        {
            _failedAfterTakeover(peer);
        }
        catch (Exception e)
        {
            _log.Line(LogSeverity.Error, $"cannot take the pid file back after pid {peer} went away: {e.Message}");
        }
    }

    /// <summary>How long the next generation said it waits, within reason.</summary>
    private static long Deadline(string argument)
    {
        long wait = long.TryParse(argument, NumberStyles.None, CultureInfo.InvariantCulture, out long ms) ? ms : (long)_firstMessage.TotalMilliseconds;
        return Environment.TickCount64 + Math.Clamp(wait, 1000, (long)_longestHandover.TotalMilliseconds);
    }

    /// <summary>Sends the listeners, waits for the commit and its confirmation, and decides.</summary>
    private void HandOver(Socket connection, int peer, long deadline)
    {
        var listeners = _listeners.Own;
        int[] fds = listeners.Select(l => (int)l.Socket.Handle).ToArray();
        if (Posix.SendWithDescriptors((int)connection.Handle, HandoverProtocol.Format(HandoverProtocol.Listeners, string.Join('\n', listeners.Select(l => l.Name))), fds, out int errno) < 0)
        {
            throw DaemonException.FromErrno("cannot send the listeners", errno);
        }

        _log.Line($"handing {fds.Length} listener(s) over to pid {peer}");
        (string kind, string argument) = HandoverProtocol.Receive(connection, deadline);
        if (kind != HandoverProtocol.Committed)
        {
            throw new DaemonException(kind.Length == 0 ? "it went away" : $"it said '{kind}'");
        }

        string[] adopted = argument.Split('\n')[1..];
        lock (_decision)
        {
            if (_stopping is { } late)
            {
                // A stop and a commit arriving together: exactly one of them wins, under one lock
                // (the next generation may have been told so already, by Refuse).
                _ = HandoverProtocol.TrySend(connection, HandoverProtocol.Abort, late);
                _log.Line(LogSeverity.Warning, $"handover to pid {peer} aborted: this daemon is stopping");
                TakeBack(peer);
                return;
            }

            _handedOver = true;
        }

        // Decided, unless the next generation is gone by now (it gave up, or was killed while this
        // one was stopped): only its confirmation makes this one stop accepting.
        if (!HandoverProtocol.TrySend(connection, HandoverProtocol.Ok) || HandoverProtocol.Receive(connection, deadline).Kind != HandoverProtocol.Done)
        {
            lock (_decision)
            {
                _handedOver = false;
            }

            throw new DaemonException("it went away before it confirmed");
        }

        _closed = true;
        _socket.Dispose();
        try
        {
            _committed(peer, adopted);
        }
        catch (Exception e)
        {
            // Decided and confirmed: the next generation holds the pid file and serves. What went
            // wrong here (a callback on the stopping token) must not give the file back to this one.
            _log.Line(LogSeverity.Error, $"after handing over to pid {peer}: {e}");
        }
        finally
        {
            // Said once the runtime acted on it (under systemd: MAINPID= the next generation), which
            // a supervised next generation waits for before it tells systemd anything itself.
            _ = HandoverProtocol.TrySend(connection, HandoverProtocol.Ok);
        }
    }

    /// <summary>
    /// Refusals, said once and then counted: one line when the first comes, then at most one line
    /// a minute with how many followed. A flood of strangers cannot flood the log.
    /// </summary>
    private sealed class RefusalLog : IDisposable
    {
        private static readonly TimeSpan _interval = TimeSpan.FromSeconds(60);
        private readonly object _gate = new();
        private readonly DaemonLog _log;
        private readonly string _allowed;
        private readonly Timer _timer;
        private bool _counting;
        private bool _disposed;
        private int _count;
        private string _last = "";

        public RefusalLog(DaemonLog log, uint[] trusted)
        {
            _log = log;
            _allowed = trusted.Length == 1 ? "root" : $"root or uid {trusted[1]}";
            _timer = new Timer(_ => EndInterval());
        }

        public void Refused(int pid, uint uid)
        {
            string who = string.Create(CultureInfo.InvariantCulture, $"uid {uid}, pid {pid}");
            lock (_gate)
            {
                if (_counting || _disposed)
                {
                    _count++;
                    _last = who;
                    return;
                }

                _counting = true;
                _ = _timer.Change(_interval, Timeout.InfiniteTimeSpan);
            }

            _log.Line(LogSeverity.Warning, $"control socket: refused a connection from {who}: only {_allowed} may restart this daemon (more refusals are counted, one line a minute)");
        }

        public void Dispose()
        {
            lock (_gate)
            {
                _disposed = true;
                _timer.Dispose();
            }

            EndInterval();
        }

        private void EndInterval()
        {
            int count;
            string last;
            lock (_gate)
            {
                count = _count;
                last = _last;
                _count = 0;
                _counting = count > 0 && !_disposed && _timer.Change(_interval, Timeout.InfiniteTimeSpan);
            }

            if (count > 0)
            {
                _log.Line(LogSeverity.Warning, $"control socket: refused {count} more connection(s) in the last minute, the last from {last}");
            }
        }
    }
}
