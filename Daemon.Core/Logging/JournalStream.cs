using System;
using System.Globalization;
using Daemon.Interop;

namespace Daemon.Logging;

/// <summary>
/// Whether a descriptor is the systemd journal's stream, as systemd.exec(5) says to tell: systemd
/// sets JOURNAL_STREAM to the <c>device:inode</c> (decimal st_dev and st_ino) of the stream it
/// connected stdout or stderr to, and only a descriptor with that same device and inode is still
/// it. The variable alone proves nothing: a program started by the service may have had its
/// output redirected, and a daemon's own log file takes descriptors 1 and 2 over.
/// </summary>
internal static class JournalStream
{
    /// <summary>The variable systemd sets for a service whose output goes to the journal.</summary>
    public const string Variable = "JOURNAL_STREAM";

    /// <summary>True when descriptor <paramref name="fd"/> is the journal stream JOURNAL_STREAM names.</summary>
    public static bool Is(int fd) =>
        Environment.GetEnvironmentVariable(Variable) is { } value
        && Posix.Fstat(fd, out FileStatus status, out _) == 0
        && Names(value, status);

    /// <summary>True when <paramref name="value"/> (JOURNAL_STREAM's) names the file <paramref name="status"/> describes.</summary>
    internal static bool Names(string? value, FileStatus status) =>
        Parse(value) is { } stream && status.Device == stream.Device && status.Inode == stream.Inode;

    /// <summary>The device and inode of <c>DEVICE:INODE</c>, both decimal; null for anything else (unset included).</summary>
    internal static (ulong Device, ulong Inode)? Parse(string? value)
    {
        int colon = value?.IndexOf(':', StringComparison.Ordinal) ?? -1;
        if (colon < 0
            || !ulong.TryParse(value.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out ulong device)
            || !ulong.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode))
        {
            return null;
        }

        return (device, inode);
    }
}
