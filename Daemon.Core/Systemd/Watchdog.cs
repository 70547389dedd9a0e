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

    /// <summary>The shortest period a <see cref="Timer"/> keeps: it counts in whole milliseconds.</summary>
    public static readonly TimeSpan ShortestPeriod = TimeSpan.FromMilliseconds(1);

    private readonly SystemdNotifier _notifier;
    private readonly Func<bool> _healthy;
    private readonly DaemonLog _log;
    private readonly Timer _timer;
    private int _stopped;
    private int _pinging;

    private Watchdog(SystemdNotifier notifier, Func<bool> healthy, DaemonLog log, TimeSpan period, long microseconds)
    {
        Microseconds = microseconds;
        _notifier = notifier;
        _healthy = healthy;
        _log = log;
        Period = period;
        _timer = new Timer(_ => Ping(), null, TimeSpan.Zero, period);
    }

    /// <summary>How often WATCHDOG=1 is sent while healthy.</summary>
    public TimeSpan Period { get; }

    /// <summary>The interval systemd gave (WATCHDOG_USEC), which a next generation started by restart is given too.</summary>
    public long Microseconds { get; }

    /// <summary>
    /// Starts pinging when WATCHDOG_USEC asks for it and WATCHDOG_PID is unset or this process;
    /// null otherwise. The variables are removed, so no program the daemon starts sees them.
    /// </summary>
    public static Watchdog? Start(SystemdNotifier notifier, Func<bool> healthy, DaemonLog log)
    {
        string? usec = Environment.GetEnvironmentVariable(WatchdogUsec);
        string? pid = Environment.GetEnvironmentVariable(WatchdogPid);
        if (usec is not null)
        {
            Interop.Posix.UnsetEnvironment(WatchdogUsec);
            Interop.Posix.UnsetEnvironment(WatchdogPid);
        }

        return Start(usec, pid, Environment.ProcessId, notifier, healthy, log);
    }

    /// <summary>
    /// The interval WATCHDOG_USEC gives this process in microseconds; 0 when it is unset, nonsense,
    /// or meant for another process (WATCHDOG_PID).
    /// </summary>
    public static long MicrosecondsOf(string? usec, string? pid) =>
        usec is not null
        && long.TryParse(usec, NumberStyles.None, CultureInfo.InvariantCulture, out long microseconds) && microseconds > 0
        && (pid is null || pid == Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
            ? microseconds : 0;

    /// <summary>
    /// For testing: starts pinging for the WATCHDOG_USEC and WATCHDOG_PID values the environment
    /// would give to process <paramref name="processId"/>; null when they ask for no pings.
    /// </summary>
    internal static Watchdog? Start(string? usec, string? pid, int processId, SystemdNotifier notifier, Func<bool> healthy, DaemonLog log)
    {
        if (usec is null
            || !long.TryParse(usec, NumberStyles.None, CultureInfo.InvariantCulture, out long microseconds) || microseconds <= 0
            || (pid is not null && pid != processId.ToString(CultureInfo.InvariantCulture)))
        {
            // Meant for another process (WATCHDOG_PID), or nonsense: never ping.
            return null;
        }

        TimeSpan period = PeriodFor(microseconds, out bool clamped);
        string every = $"WATCHDOG=1 every {Milliseconds(period)} ms while healthy";
        if (clamped)
        {
            string asked = Milliseconds(TimeSpan.FromTicks(microseconds * 5));
            log.Line(LogSeverity.Warning, $"watchdog: WATCHDOG_USEC={microseconds} asks for a ping every {asked} ms, less than a timer can keep; {every} instead (raise WatchdogSec=, or systemd may find the daemon late)");
        }
        else
        {
            log.Line($"watchdog: {every}");
        }

        return new Watchdog(notifier, healthy, log, period, microseconds);
    }

    /// <summary>
    /// Half the interval, in the whole milliseconds a <see cref="Timer"/> counts (rounded down, so
    /// never later than asked), at least <see cref="ShortestPeriod"/> (<paramref name="clamped"/>
    /// then says so: a period of 0 would make the timer fire once) and at most what a Timer takes
    /// (about 49 days).
    /// </summary>
    internal static TimeSpan PeriodFor(long microseconds, out bool clamped)
    {
        long milliseconds = microseconds / 2 / 1000;
        clamped = milliseconds < ShortestPeriod.TotalMilliseconds;
        return TimeSpan.FromMilliseconds(Math.Clamp(milliseconds, (long)ShortestPeriod.TotalMilliseconds, uint.MaxValue - 1L));
    }

    private static string Milliseconds(TimeSpan span) => span.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>Stops pinging (the daemon is stopping).</summary>
    public void Dispose()
    {
        Interlocked.Exchange(ref _stopped, 1);
        _timer.Dispose();
    }

    private void Ping()
    {
        // One ping at a time: a Timer fires again on another pool thread while a slow one still runs.
        if (Interlocked.Exchange(ref _pinging, 1) != 0)
        {
            return;
        }

        try
        {
            if (Volatile.Read(ref _stopped) == 0)
            {
                PingOnce();
            }
        }
        finally
        {
            Volatile.Write(ref _pinging, 0);
        }
    }

    private void PingOnce()
    {
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
