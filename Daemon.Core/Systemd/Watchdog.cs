using System;
using System.Globalization;
using System.Threading;
using Daemon.Logging;

namespace Daemon.Systemd;

/// <summary>
/// The systemd watchdog (sd_watchdog_enabled(3)): WATCHDOG=1 every half interval while the daemon
/// is healthy. The pings come from the thread pool, so a starved or deadlocked pool stops them, and
/// a health check that fails or throws stops them for good (said once): systemd then acts as the
/// unit says. Nothing runs, and nothing wakes up, when no watchdog is asked for.
/// </summary>
internal sealed class Watchdog : IDisposable
{
    private const string WatchdogUsec = "WATCHDOG_USEC";
    private const string WatchdogPid = "WATCHDOG_PID";

    private readonly SystemdNotifier _notifier;
    private readonly Func<bool> _healthy;
    private readonly DaemonLog _log;
    private readonly Timer _timer;
    private int _stopped;

    private Watchdog(SystemdNotifier notifier, Func<bool> healthy, DaemonLog log, TimeSpan period)
    {
        _notifier = notifier;
        _healthy = healthy;
        _log = log;
        _timer = new Timer(_ => Ping(), null, TimeSpan.Zero, period);
    }

    /// <summary>
    /// Starts pinging when WATCHDOG_USEC asks for it and WATCHDOG_PID is unset or this process;
    /// null otherwise. The variables are removed, so no program the daemon starts sees them.
    /// </summary>
    public static Watchdog? Start(SystemdNotifier notifier, Func<bool> healthy, DaemonLog log)
    {
        string? usec = Environment.GetEnvironmentVariable(WatchdogUsec);
        string? pid = Environment.GetEnvironmentVariable(WatchdogPid);
        if (usec is null)
        {
            return null;
        }

        Interop.Posix.UnsetEnvironment(WatchdogUsec);
        Interop.Posix.UnsetEnvironment(WatchdogPid);
        if (!long.TryParse(usec, NumberStyles.None, CultureInfo.InvariantCulture, out long microseconds) || microseconds <= 0
            || (pid is not null && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture)))
        {
            // Meant for another process (WATCHDOG_PID), or nonsense: never ping.
            return null;
        }

        // Half the interval, at most what a Timer takes (about 49 days).
        TimeSpan period = TimeSpan.FromTicks(Math.Clamp(microseconds * 5, 1, TimeSpan.FromMilliseconds(uint.MaxValue - 1).Ticks));
        log.Line($"watchdog: WATCHDOG=1 every {period.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)} ms while healthy");
        return new Watchdog(notifier, healthy, log, period);
    }

    /// <summary>Stops pinging (the daemon is stopping).</summary>
    public void Dispose()
    {
        Interlocked.Exchange(ref _stopped, 1);
        _timer.Dispose();
    }

    private void Ping()
    {
        if (Volatile.Read(ref _stopped) != 0)
        {
            return;
        }

        string? why;
        try
        {
            why = _healthy() ? null : "the health check failed";
        }
        catch (Exception e)
        {
            why = $"the health check threw {e.GetType().Name}: {e.Message}";
        }

        if (why is null)
        {
            _notifier.Watchdog();
            return;
        }

        if (Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            _timer.Dispose();
            _log.Line(LogSeverity.Error, $"watchdog: {why}; no longer pinging, so systemd acts as the unit says");
        }
    }
}
