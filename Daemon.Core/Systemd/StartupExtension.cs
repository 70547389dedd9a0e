using System;
using System.Threading;
using Daemon.Logging;

namespace Daemon.Systemd;

/// <summary>
/// EXTEND_TIMEOUT_USEC (sd_notify(3)) while a startup hook runs under a service manager: every
/// <see cref="Period"/> from the hook's start, "wait <see cref="Extension"/> more from now". systemd
/// heeds it only once the unit's own start timeout (TimeoutStartSec=) has passed, and only if the
/// first one came before that: a quick startup sends nothing, and a slow one is not killed at a
/// TimeoutStartSec= above the first period while the daemon is alive to ask. An extension of 2.5
/// periods leaves room for a late timer on a busy machine.
/// </summary>
/// <remarks>
/// <para>A hook that hangs in a live process would be extended for ever, so the extensions end at
/// the daemon's own ready timeout after it began to start, the time <c>start</c> would give it (the
/// last one reaches just that far, and the log says so); systemd then times the start out as the
/// unit says. They end as well when a stop is requested: the unit's stop timeout applies then.</para>
/// <para>start-stop-daemon's <c>--notify-await</c> gets none: dpkg (1.21 and 1.22 at least) reads
/// the value as milliseconds, so 5 s would become 83 minutes, past any <c>--notify-timeout</c>.
/// Its own timeout holds instead.</para>
/// </remarks>
internal sealed class StartupExtension : IDisposable
{
    /// <summary>How often the extension is asked for, the first time one period after the hook began.</summary>
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(2);

    /// <summary>How much time each message asks for, from the moment it is sent.</summary>
    public static readonly TimeSpan Extension = TimeSpan.FromSeconds(5);

    private readonly SystemdNotifier _notifier;
    private readonly DaemonLog _log;
    private readonly TimeSpan _limit;
    private readonly CancellationToken _stopping;
    private readonly TimeProvider _time;
    private readonly long _started;
    private readonly object _gate = new();
    private readonly ITimer? _timer;
    private bool _done;
    private bool _asked;

    private StartupExtension(SystemdNotifier notifier, DaemonLog log, TimeSpan limit, long startedAt, CancellationToken stopping, TimeProvider time)
    {
        _notifier = notifier;
        _log = log;
        _limit = limit;
        _stopping = stopping;
        _time = time;
        _started = startedAt;
        _timer = time.CreateTimer(_ => Tick(), null, Period, Period);
    }

    /// <summary>
    /// Starts asking for time while a hook runs, up to <paramref name="limit"/> (the ready timeout)
    /// after <paramref name="startedAt"/>; null, and nothing runs, when no service manager listens,
    /// or when it is start-stop-daemon.
    /// </summary>
    /// <param name="notifier">The open notifier.</param>
    /// <param name="log">Where the first extension and the last are said.</param>
    /// <param name="limit">How long after <paramref name="startedAt"/> the extensions may reach.</param>
    /// <param name="startedAt">When the daemon began to start, as <paramref name="time"/>'s timestamp: a daemon with two hooks before it is ready (startup, activation) gets the ready timeout once for both.</param>
    /// <param name="stopping">Cancelled when a stop is requested: no more extensions.</param>
    /// <param name="time">For testing: the clock and its timers.</param>
    public static StartupExtension? Start(SystemdNotifier notifier, DaemonLog log, TimeSpan limit, long startedAt, CancellationToken stopping, TimeProvider? time = null) =>
        notifier.IsOpen && !notifier.IsStartStopDaemons ? new StartupExtension(notifier, log, limit, startedAt, stopping, time ?? TimeProvider.System) : null;

    /// <summary>Stops asking: the hook returned. No extension is sent once this has returned.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _done = true;
        }

        _timer?.Dispose();
    }

    private void Tick()
    {
        // Under the lock, so that nothing is sent after Dispose returned (READY=1 comes next).
        lock (_gate)
        {
            if (_done)
            {
                return;
            }

            TimeSpan left = _limit - _time.GetElapsedTime(_started);
            if (_stopping.IsCancellationRequested || left <= TimeSpan.Zero)
            {
                // Null only in a tick that came before the constructor returned.
                _done = true;
                _timer?.Dispose();
                if (!_stopping.IsCancellationRequested)
                {
                    _log.Line(LogSeverity.Warning, $"startup: still in the startup hook after the ready timeout ({OptionValues.ShowSeconds(_limit)} s); no more EXTEND_TIMEOUT_USEC, so the service manager's start timeout applies");
                }

                return;
            }

            if (!_asked)
            {
                _asked = true;
                _log.Line($"startup: taking more than {OptionValues.ShowSeconds(Period)} s; EXTEND_TIMEOUT_USEC of {OptionValues.ShowSeconds(Extension)} s every {OptionValues.ShowSeconds(Period)} s, until the ready timeout ({OptionValues.ShowSeconds(_limit)} s)");
            }

            _notifier.ExtendTimeout(left < Extension ? left : Extension);
        }
    }
}
