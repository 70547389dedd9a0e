namespace Daemon.Options;

/// <summary>
/// A daemon's files, decided once: the commands and the runtime receive this value instead of
/// each choosing between an option and its default. The control channel derives from the pid file.
/// </summary>
/// <param name="PidFile">The pid file; null for <c>run</c> without <c>--pid-file</c>.</param>
/// <param name="LogFile">The log file; null for <c>run</c> without <c>--log-file</c> (it logs to stderr).</param>
internal sealed record DaemonFiles(string? PidFile, string? LogFile)
{
    /// <summary>
    /// The files of a daemon in the background (<c>start</c>, and every command that finds one):
    /// the options, else the defaults; in the foreground (<c>run</c>), only what the options name.
    /// </summary>
    public static DaemonFiles Resolve(DaemonOptions options, DaemonPaths defaults, bool background) => background
        ? new(options.PidFile ?? defaults.DefaultPidFile, options.LogFile ?? defaults.DefaultLogFile)
        : new(options.PidFile, options.LogFile);
}
