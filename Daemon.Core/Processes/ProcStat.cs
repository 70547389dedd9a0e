using System;
using System.Globalization;

namespace Daemon.Processes;

/// <summary>What /proc/PID/stat says of a process, as proc(5) lays it out.</summary>
internal static class ProcStat
{
    // Field 22, starttime; fields are counted from 1, and field 3 is the first after the name.
    private const int StartTimeAfterName = 22 - 3;

    /// <summary>
    /// When the process started: its starttime (clock ticks after boot, <paramref name="ticksPerSecond"/>
    /// a second) against /proc/uptime's seconds since boot, both counting suspended time, at
    /// <paramref name="now"/>. Null when either text is not what proc(5) describes.
    /// </summary>
    public static DateTimeOffset? StartTime(string stat, string uptime, DateTimeOffset now, long ticksPerSecond)
    {
        // The name, in parentheses, may hold spaces and parentheses itself: fields follow the last ')'.
        int nameEnd = stat.LastIndexOf(')');
        string[] fields = nameEnd < 0 ? [] : stat[(nameEnd + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string[] up = uptime.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length <= StartTimeAfterName || up.Length == 0 || ticksPerSecond <= 0
            || !ulong.TryParse(fields[StartTimeAfterName], NumberStyles.None, CultureInfo.InvariantCulture, out ulong startTicks)
            || !double.TryParse(up[0], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double secondsSinceBoot))
        {
            return null;
        }

        double age = secondsSinceBoot - ((double)startTicks / ticksPerSecond);
        return now - TimeSpan.FromSeconds(Math.Max(0, age));
    }
}
