using System;
using System.Globalization;
using System.IO;
using System.Text;
using Daemon.Files;
using Daemon.Interop;

namespace Daemon.Commands;

/// <summary>
/// The lines <c>status</c> prints under <c>running (pid N)</c>, as <c>systemctl status</c> does:
/// since when, the pid file, the log file; and which log a dead daemon left. The first line
/// stays alone for scripts that parse it.
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
    /// <c>  log file PATH</c>: where the daemon's stderr really goes (<paramref name="target"/>, from
    /// /proc/PID/fd/2). A daemon run in the foreground without a log file has none: its stderr is a
    /// socket (the journal), a pipe or a terminal. When that cannot be read (another user's process),
    /// the <c>--log-file</c> given (<paramref name="given"/>), or else unknown: never a guess.
    /// </summary>
    public static string LogFile(string? target, string? given, int pid)
    {
        const string deleted = Processes.ProcessTable.DeletedMark;
        if (target is not null && target.EndsWith(Processes.ProcessTable.NotDeletedMark, StringComparison.Ordinal))
        {
            // A file named "... (deleted)" that is not: its path as it is.
            return $"  log file {PathText.Quote(target[..^1])}";
        }

        if (target is null)
        {
            return given is null
                ? $"  log file unknown (only root and its user can read /proc/{pid}/fd/2)"
                : $"  log file {PathText.Quote(given)}";
        }

        if (target == "/dev/null" || (target.StartsWith('/') && !target.StartsWith("/dev/", StringComparison.Ordinal)))
        {
            return target.EndsWith(deleted, StringComparison.Ordinal)
                ? $"  log file {PathText.Quote(target[..^deleted.Length])} (deleted, still written: reload reopens the log at its path)"
                : $"  log file {PathText.Quote(target)}";
        }

        return $"  log file none (its stderr is {PathText.Quote(target)})";
    }

    /// <summary>
    /// <c>; see LOG</c> for a daemon that died: the <c>--log-file</c> given (<paramref name="given"/>),
    /// or the default log (<paramref name="defaultLog"/>) when its last lines come from that pid
    /// (<c>NAME[PID]: </c>); else nothing, rather than a log it may never have written.
    /// </summary>
    public static string LogOfDeadDaemon(string? given, string defaultLog, string name, int? pid)
    {
        if (given is not null)
        {
            return $"; see {PathText.Quote(given)}";
        }

        return pid is { } dead && TailMentions(defaultLog, $" {name}[{dead}]: ") ? $"; see {PathText.Quote(defaultLog)}" : "";
    }

    /// <summary>True when the last 64 KiB of the file at <paramref name="path"/> hold <paramref name="text"/>.</summary>
    private static bool TailMentions(string path, string text)
    {
        const int tail = 64 * 1024;
        if (GuardedFile.Open("log file", path, OpenFlags.O_RDONLY, 0, out int fd, out _, out _) is not null)
        {
            return false;
        }

        try
        {
            byte[] buffer = new byte[tail];
            // A length read through the path, which may name another file by now, only moves the window.
            long size = new FileInfo(path).Length;
            long n = Posix.ReadAt(fd, buffer, Math.Max(0, size - tail), out _);
            return n > 0 && Encoding.UTF8.GetString(buffer, 0, (int)n).Contains(text, StringComparison.Ordinal);
        }
        finally
        {
            Posix.Close(fd);
        }
    }
}
