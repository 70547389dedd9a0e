using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace Daemon.Handover;

/// <summary>
/// The kernel's view of Unix sockets, as any process can read it: the listening sockets of this
/// network namespace (/proc/net/unix) and the socket inodes a process holds (/proc/PID/fd).
/// </summary>
internal static class UnixSockets
{
    // /proc/net/unix: a listening socket's flags (__SO_ACCEPTCON).
    private const int AcceptCon = 0x10000;

    /// <summary>A listening Unix socket: its inode, type (SOCK_STREAM 1, SOCK_SEQPACKET 5...) and name ("@name" when abstract, "/path" for a file).</summary>
    public readonly record struct Listener(ulong Inode, int Type, string Name);

    /// <summary>Every listening Unix socket with a name; empty when /proc/net/unix cannot be read.</summary>
    public static List<Listener> Listening()
    {
        var found = new List<Listener>();
        try
        {
            foreach (string line in File.ReadLines("/proc/net/unix"))
            {
                // Num RefCount Protocol Flags Type St Inode Path
                string[] fields = line.Split(' ', 8, StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length == 8
                    && int.TryParse(fields[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int flags) && (flags & AcceptCon) != 0
                    && int.TryParse(fields[4], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int type)
                    && ulong.TryParse(fields[6], NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode))
                {
                    found.Add(new Listener(inode, type, fields[7]));
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not mounted, or hidden: nothing to go by.
        }

        return found;
    }

    /// <summary>The inodes of the sockets <paramref name="pid"/> holds; null when its descriptors are not ours to read.</summary>
    public static HashSet<ulong>? InodesHeldBy(int pid)
    {
        try
        {
            var inodes = new HashSet<ulong>();
            foreach (string fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
            {
                string? target = new FileInfo(fd).LinkTarget;
                if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal) && ulong.TryParse(target.AsSpan(8, target.Length - 9), NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode))
                {
                    inodes.Add(inode);
                }
            }

            return inodes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
