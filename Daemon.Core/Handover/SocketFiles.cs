using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Net.Sockets;
using Daemon.Interop;

namespace Daemon.Handover;

/// <summary>
/// The Unix socket files a daemon listens on, as another process sees them, and their removal
/// once nobody accepts on them: what <c>stop</c> does for a daemon that dropped privileges and so
/// could not unlink its own files in a folder only root may write.
/// </summary>
internal static class SocketFiles
{
    // /proc/net/unix: listening (__SO_ACCEPTCON) sockets.
    private const int AcceptCon = 0x10000;

    /// <summary>The paths of the Unix sockets <paramref name="pid"/> listens on; empty when its descriptors are not ours to read.</summary>
    public static IReadOnlyList<string> ListenedOnBy(int pid)
    {
        var paths = new List<string>();
        try
        {
            var held = new HashSet<string>();
            foreach (string fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                {
                    held.Add(target[8..^1]);
                }
            }

            foreach (string line in File.ReadLines("/proc/net/unix"))
            {
                // Num RefCount Protocol Flags Type St Inode Path; a file's path starts with "/".
                string[] fields = line.Split(' ', 8, StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length == 8 && fields[7].StartsWith('/') && held.Contains(fields[6])
                    && int.TryParse(fields[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int flags) && (flags & AcceptCon) != 0)
                {
                    paths.Add(fields[7]);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Gone, or not ours to look at: nothing to clean up after.
        }

        return paths;
    }

    /// <summary>
    /// Removes <paramref name="path"/> when it is a socket nobody accepts on (a connect is refused);
    /// false when it is something else, or a live socket (a next generation's), which stay.
    /// </summary>
    public static bool RemoveIfStale(string path)
    {
        if (Posix.Lstat(path, out FileStatus status, out _) < 0 || status.Type != FileType.Socket)
        {
            return false;
        }

        foreach (SocketType type in new[] { SocketType.Stream, SocketType.Seqpacket, SocketType.Dgram })
        {
            using var probe = new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified);
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                return false;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ProtocolType)
            {
                // Another type of socket: try the next.
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                return Posix.Unlink(path, out _) == 0;
            }
            catch (SocketException)
            {
                return false;
            }
        }

        return false;
    }
}
