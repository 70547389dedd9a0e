using System;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using Daemon.Files;
using Daemon.Interop;
using Daemon.Logging;

namespace Daemon.Systemd;

/// <summary>
/// The sd_notify(3) protocol, spoken when systemd (or another supervisor) sets NOTIFY_SOCKET:
/// one datagram per state change on a Unix socket, "@" naming the abstract namespace.
/// Without NOTIFY_SOCKET it does nothing and costs nothing.
/// </summary>
/// <remarks>
/// A NOTIFY_SOCKET that cannot be used (not a socket address, too long, nobody there) fails
/// <see cref="Open"/>, so that <c>run</c> refuses to start with that reason rather than leave a
/// Type=notify unit to time out without one. Sending never blocks for long: a receiver that does not
/// read gets <see cref="DefaultPatience"/> to make room, then the message is dropped, later ones are
/// dropped at once until it reads again, and the log says so at most once a minute.
/// </remarks>
internal sealed class SystemdNotifier : IDisposable
{
    /// <summary>How long one message waits for room at a receiver that does not read.</summary>
    /// <remarks>A second: systemd may be busy that long (daemon-reload), and READY=1 must not be lost.</remarks>
    public static readonly TimeSpan DefaultPatience = TimeSpan.FromSeconds(1);

    /// <summary>At most one warning about dropped messages per this interval.</summary>
    public static readonly TimeSpan WarningInterval = TimeSpan.FromMinutes(1);

    private readonly string? _address;
    private readonly string? _socketName;
    private readonly DaemonLog? _log;
    private readonly TimeSpan _patience;
    private readonly TimeProvider _time;
    private readonly object _gate = new();
    private Socket? _socket;
    private bool _disposed;
    private bool _stuck;
    private int _dropped;
    private long? _lastWarning;

    /// <summary>
    /// For testing: takes the NOTIFY_SOCKET value the environment would give, where warnings go,
    /// how long a message waits for room, and the clock of the warnings' rate limit.
    /// </summary>
    internal SystemdNotifier(string? notifySocket, DaemonLog? log, TimeSpan? patience = null, TimeProvider? time = null)
    {
        _log = log;
        _patience = patience ?? DefaultPatience;
        _time = time ?? TimeProvider.System;
        if (string.IsNullOrEmpty(notifySocket))
        {
            return;
        }

        _address = notifySocket;
        Problem = ProblemWith(notifySocket);
        if (Problem is null)
        {
            // An abstract socket's name starts with a NUL byte; systemd writes it as "@".
            _socketName = notifySocket[0] == '@' ? "\0" + notifySocket[1..] : notifySocket;
        }
    }

    /// <summary>Why NOTIFY_SOCKET cannot be used as a socket address, or null (also when it is unset).</summary>
    public string? Problem { get; }

    /// <summary>True once <see cref="Open"/> connected to NOTIFY_SOCKET: messages go somewhere.</summary>
    public bool IsOpen => _socket is not null;

    /// <summary>How many messages were dropped because the receiver did not take them.</summary>
    public int Dropped { get; private set; }

    /// <summary>A notifier for NOTIFY_SOCKET, warning through <paramref name="log"/>; call <see cref="Open"/> before use.</summary>
    public static SystemdNotifier FromEnvironment(DaemonLog log) => new(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"), log);

    /// <summary>
    /// Connects to NOTIFY_SOCKET, which shows at once that it is a datagram socket someone holds; does
    /// nothing when it is unset. Until this is called nothing is sent.
    /// </summary>
    /// <exception cref="DaemonException">NOTIFY_SOCKET is set but cannot be used: one line saying why.</exception>
    public void Open()
    {
        if (_address is null || _socket is not null)
        {
            return;
        }

        if (Problem is not null)
        {
            throw new DaemonException($"cannot use NOTIFY_SOCKET: {Problem}; sd_notify could not tell the service manager anything");
        }

        // Connected: the send can then wait for room at this receiver (poll), and a wrong address
        // shows now, with connect's own errno.
        int fd = Posix.ConnectUnixDatagram(_socketName!, out int errno);
        if (fd < 0)
        {
            throw new DaemonException($"cannot use NOTIFY_SOCKET {PathText.Quote(_address)}: connect: {Posix.Describe(errno)}; sd_notify could not tell the service manager anything");
        }

        var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));

        // Sends fail with EAGAIN instead of waiting; Send bounds the wait itself.
        socket.Blocking = false;
        _socket = socket;
    }

    /// <summary>
    /// READY=1 with the main pid: the startup hook returned. To start-stop-daemon, the last
    /// message: it removes its socket once it has read READY=1, and later ones would only fail.
    /// </summary>
    public void Ready()
    {
        Send($"READY=1\nMAINPID={Environment.ProcessId}");
        if (IsStartStopDaemons)
        {
            lock (_gate)
            {
                _socket?.Dispose();
                _socket = null;
            }
        }
    }

    /// <summary>
    /// MAINPID=<paramref name="pid"/>: the service's main process hands its place to a next
    /// generation in the service before it exits.
    /// </summary>
    /// <returns>True when the service manager has the message.</returns>
    public bool MainPid(int pid) => Send($"MAINPID={pid.ToString(CultureInfo.InvariantCulture)}");

    /// <summary>True when NOTIFY_SOCKET names a service manager to tell.</summary>
    public bool IsEnabled => _address is not null;

    /// <summary>RELOADING=1 with the monotonic time, which Type=notify-reload waits for.</summary>
    public void Reloading() => Send($"RELOADING=1\nMONOTONIC_USEC={MonotonicMicroseconds()}");

    /// <summary>WATCHDOG=1: the daemon is alive and healthy.</summary>
    public void Watchdog() => Send("WATCHDOG=1");

    /// <summary>STOPPING=1: the daemon is shutting down.</summary>
    public void Stopping() => Send("STOPPING=1");

    /// <summary>
    /// FDSTORE=1 with FDNAME=<paramref name="fdName"/> and <paramref name="fd"/> attached
    /// (SCM_RIGHTS): systemd keeps a copy of the descriptor and passes it to the next start.
    /// </summary>
    public bool Store(string fdName, int fd) => Send($"FDSTORE=1\nFDNAME={fdName}", [fd]);

    /// <summary>FDSTOREREMOVE=1 with FDNAME=<paramref name="fdName"/>: systemd closes what it keeps under that name.</summary>
    public bool RemoveStored(string fdName) => Send($"FDSTOREREMOVE=1\nFDNAME={fdName}");

    /// <summary>
    /// EXTEND_TIMEOUT_USEC: the service manager waits <paramref name="by"/> more from now, for the
    /// next message, once the unit's own start timeout has passed.
    /// </summary>
    public void ExtendTimeout(TimeSpan by) =>
        Send($"EXTEND_TIMEOUT_USEC={Math.Max(0, by.Ticks / 10).ToString(CultureInfo.InvariantCulture)}");

    /// <summary>
    /// STATUS=<paramref name="reason"/> (one line), and ERRNO=<paramref name="errno"/> when it is
    /// above 0: the startup failed. <c>systemctl status</c> shows the reason, and
    /// <c>start-stop-daemon --notify-await</c> fails at once on the errno instead of waiting out its
    /// timeout. Sent even when the failure came before <see cref="Open"/>, when NOTIFY_SOCKET can
    /// be reached.
    /// </summary>
    public void StartupFailed(string reason, int errno)
    {
        if (_socket is null && _address is not null && Problem is null)
        {
            try
            {
                Open();
            }
            catch (DaemonException)
            {
                // Nobody to tell; the log has the reason.
                return;
            }
        }

        string status = "STATUS=" + reason.ReplaceLineEndings(" ");
        Send(errno > 0 ? $"{status}\nERRNO={errno.ToString(CultureInfo.InvariantCulture)}" : status);
    }

    /// <summary>
    /// True when NOTIFY_SOCKET is the one start-stop-daemon <c>--notify-await</c> binds,
    /// <c>$TMPDIR/.s-s-d-notify.XXXXXX/notify</c> (dpkg's setup_socket_name): a receiver that reads
    /// READY=1, ERRNO= and EXTEND_TIMEOUT_USEC, the last in milliseconds rather than microseconds.
    /// </summary>
    public bool IsStartStopDaemons => _address?.Contains("/.s-s-d-notify.", StringComparison.Ordinal) == true;

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _socket?.Dispose();
        }
    }

    /// <summary>
    /// Sends one message, with <paramref name="descriptors"/> attached if any; true when the
    /// receiver has it. A full receiver gets the patience once; while it stays full, later messages
    /// are dropped without waiting. Never throws.
    /// </summary>
    internal bool Send(string state, int[]? descriptors = null)
    {
        Socket? socket = _socket;
        if (socket is null)
        {
            return false;
        }

        byte[] message = Encoding.UTF8.GetBytes(state);
        long deadline = Stopwatch.GetTimestamp() + (long)(_patience.TotalSeconds * Stopwatch.Frequency);
        SocketError error;
        int errno;
        bool reconnected = false;
        while (true)
        {
            (error, errno) = TrySend(socket, message, descriptors ?? []);
            if (error == SocketError.Success)
            {
                Delivered();
                return true;
            }

            if (error == SocketError.ConnectionRefused && !reconnected && Reconnect(socket) is Socket fresh)
            {
                // The receiver's socket was closed and maybe bound anew at its path: send there, once.
                socket = fresh;
                reconnected = true;
                continue;
            }

            long left = deadline - Stopwatch.GetTimestamp();
            if (error != SocketError.WouldBlock || Volatile.Read(ref _stuck) || left <= 0)
            {
                break;
            }

            try
            {
                // A connected datagram socket polls writable once its receiver's queue has room.
                _ = socket.Poll((int)Math.Clamp(left * 1_000_000 / Stopwatch.Frequency, 1, int.MaxValue), SelectMode.SelectWrite);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                break;
            }
        }

        NotDelivered(state, error, errno);
        return false;
    }

    /// <summary>
    /// A socket connected afresh to NOTIFY_SOCKET in place of <paramref name="stale"/> (whose receiver
    /// went away), or null when nobody is there now or the notifier was disposed.
    /// </summary>
    private Socket? Reconnect(Socket stale)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return null;
            }

            if (_socket != stale)
            {
                // Another sender reconnected already.
                return _socket;
            }

            int fd = Posix.ConnectUnixDatagram(_socketName!, out _);
            if (fd < 0)
            {
                return null;
            }

            _socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true)) { Blocking = false };
            stale.Dispose();
            return _socket;
        }
    }

    /// <summary>One non-blocking send: Success, or the error and its errno.</summary>
    private static (SocketError Error, int Errno) TrySend(Socket socket, byte[] message, int[] descriptors)
    {
        try
        {
            if (descriptors.Length > 0)
            {
                // System.Net.Sockets cannot attach descriptors (SCM_RIGHTS): the handover's sendmsg can.
                return Posix.SendWithDescriptors((int)socket.Handle, message, descriptors, out int errno) >= 0
                    ? (SocketError.Success, 0)
                    : (errno switch
                    {
                        Errno.EAGAIN => SocketError.WouldBlock,
                        Errno.ECONNREFUSED => SocketError.ConnectionRefused,
                        _ => SocketError.SocketError,
                    }, errno);
            }

            _ = socket.Send(message);
            return (SocketError.Success, 0);
        }
        catch (SocketException e)
        {
            return (e.SocketErrorCode, e.NativeErrorCode);
        }
        catch (ObjectDisposedException)
        {
            // A watchdog ping already under way when the daemon closed its notifier at exit.
            return (SocketError.Shutdown, 0);
        }
    }

    private void Delivered()
    {
        if (!Volatile.Read(ref _stuck))
        {
            return;
        }

        lock (_gate)
        {
            if (_stuck)
            {
                _stuck = false;
                _log?.Line($"sd_notify: NOTIFY_SOCKET {PathText.Quote(_address!)} takes messages again ({Dropped} dropped in all)");
            }
        }
    }

    private void NotDelivered(string state, SocketError error, int errno)
    {
        if (error == SocketError.Shutdown)
        {
            return;
        }

        string what = state.Split('\n')[0];
        lock (_gate)
        {
            Dropped++;
            _dropped++;
            bool first = !_stuck;
            _stuck = error == SocketError.WouldBlock;
            long now = _time.GetTimestamp();
            if (_lastWarning is long last && _time.GetElapsedTime(last, now) < WarningInterval)
            {
                // Said at most once per interval; the next line counts what was dropped meanwhile.
                return;
            }

            string reason = error == SocketError.WouldBlock
                ? $"the receiver has not read for {_patience.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s"
                : Posix.Describe(errno);
            string count = _dropped == 1 ? "" : $"; {_dropped} message(s) dropped since the last warning";
            _log?.Line(LogSeverity.Warning, $"sd_notify: {what} not delivered to NOTIFY_SOCKET {PathText.Quote(_address!)}: {reason}{count}"
                + (first && _stuck ? "; later messages are dropped at once until it reads again" : "") + "; the daemon serves on");
            _lastWarning = now;
            _dropped = 0;
        }
    }

    /// <summary>Why <paramref name="value"/> is no Unix socket address sd_notify could send to, or null.</summary>
    internal static string? ProblemWith(string value)
    {
        if (value[0] != '/' && value[0] != '@')
        {
            return $"{PathText.Quote(value)} is neither an absolute path nor an abstract name ('@...')";
        }

        // sun_path holds 108 bytes: a path and its terminating NUL, or an abstract name's NUL and name.
        int bytes = Encoding.UTF8.GetByteCount(value);
        int most = value[0] == '@' ? Posix.SockaddrUn.PathBytes : Posix.SockaddrUn.PathBytes - 1;
        return bytes > most
            ? $"{PathText.Quote(value)} is {bytes} bytes long, more than the {most} a Unix socket address holds"
            : null;
    }

    // Stopwatch reads CLOCK_MONOTONIC on Linux, the clock systemd compares against.
    private static string MonotonicMicroseconds() =>
        (Stopwatch.GetTimestamp() / (Stopwatch.Frequency / 1_000_000)).ToString(CultureInfo.InvariantCulture);
}
