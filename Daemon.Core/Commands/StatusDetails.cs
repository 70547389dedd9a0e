using System;
using System.Globalization;
using Daemon.Files;

namespace Daemon.Commands;

/// <summary>
/// The lines <c>status</c> prints under <c>running (pid N)</c>, as <c>systemctl status</c> does:
/// since when, the pid file, the log file. The first line stays alone for scripts that parse it.
/// </summary>
internal static class StatusDetails
{
    /// <summary><c>  since 2026-11-30 06:12:03 UTC (3 min 12 s ago)</c>, in the local time zone.</summary>
    public static string Since(DateTimeOffset started, DateTimeOffset now, TimeZoneInfo zone)
    {
        DateTimeOffset local = TimeZoneInfo.ConvertTime(started, zone);
        string offset = local.Offset == TimeSpan.Zero ? "UTC" : local.ToString("zzz", CultureInfo.InvariantCulture);
        string when = local.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        return $"  since {when} {offset} ({Duration(now - started)} ago)";
    }

    /// <summary>A duration in its two largest units: <c>12 s</c>, <c>3 min 12 s</c>, <c>2 h 5 min</c>, <c>3 days 4 h</c>.</summary>
    public static string Duration(TimeSpan elapsed)
    {
        // A start time read to the clock tick can lie a moment ahead of a coarse "now".
        long seconds = Math.Max(0, (long)elapsed.TotalSeconds);
        long minutes = seconds / 60;
        long hours = minutes / 60;
        long days = hours / 24;
        return days > 0 ? $"{days} {(days == 1 ? "day" : "days")} {hours % 24} h"
            : hours > 0 ? $"{hours} h {minutes % 60} min"
            : minutes > 0 ? $"{minutes} min {seconds % 60} s"
            : $"{seconds} s";
    }

    /// <summary>
    /// <c>  log file PATH</c>: where the daemon's stderr really goes when that can be read
    /// (<paramref name="target"/>, from /proc/PID/fd/2), else the configured <paramref name="configured"/>.
    /// A daemon run in the foreground without a log file has none: its stderr is a socket (the
    /// journal), a pipe or a terminal.
    /// </summary>
    public static string LogFile(string? target, string configured)
    {
        const string deleted = " (deleted)";
        if (target is null)
        {
            return $"  log file {PathText.Quote(configured)}";
        }

        if (target == "/dev/null" || (target.StartsWith('/') && !target.StartsWith("/dev/", StringComparison.Ordinal)))
        {
            return target.EndsWith(deleted, StringComparison.Ordinal)
                ? $"  log file {PathText.Quote(target[..^deleted.Length])} (deleted, still written: reload reopens the log at its path)"
                : $"  log file {PathText.Quote(target)}";
        }

        return $"  log file none (its stderr is {PathText.Quote(target)})";
    }
}
