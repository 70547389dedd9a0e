namespace Daemon;

/// <summary>
/// How much a line of the daemon's log matters. In the log file, a warning reads
/// <c>NAME[PID]: warning: ...</c> and an error <c>NAME[PID]: error: ...</c>; information has no prefix.
/// </summary>
public enum LogSeverity
{
    /// <summary>The daemon's ordinary life: starting, ready, reloading, stopping, stopped.</summary>
    Information,

    /// <summary>Something failed, and the daemon goes on: a reload that kept the old configuration, a refused handover.</summary>
    Warning,

    /// <summary>Something failed that stops the daemon or needs an administrator: a startup failure, a crash.</summary>
    Error,
}
