using System.Collections.Generic;
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
    /// <summary>The paths of the Unix sockets <paramref name="pid"/> listens on; empty when its descriptors are not ours to read.</summary>
    public static IReadOnlyList<string> ListenedOnBy(int pid)
    {
        HashSet<ulong>? held = UnixSockets.InodesHeldBy(pid);
        if (held is null)
        {
            return [];
        }

        var paths = new List<string>();
        foreach (UnixSockets.Listener listener in UnixSockets.Listening())
        {
            if (listener.Name.StartsWith('/') && held.Contains(listener.Inode))
            {
                paths.Add(listener.Name);
            }
        }

        return paths;
    }

    /// <summary>What is at a socket file's path, as a connect finds it.</summary>
    public enum Found
    {
        /// <summary>Nothing.</summary>
        Nothing,

        /// <summary>Something that is not a socket.</summary>
        NotASocket,

        /// <summary>A socket some process accepts on (its queue may be full).</summary>
        Live,

        /// <summary>A socket nobody accepts on any more: its daemon is gone.</summary>
        Stale,
    }

    /// <summary>
    /// What is at <paramref name="path"/>: a connect, never blocking (a live listener's full queue
    /// counts as live), tells a live socket from a stale one.
    /// </summary>
    public static Found Probe(string path)
    {
        if (Posix.Lstat(path, out FileStatus status, out _) < 0)
        {
            return Found.Nothing;
        }

        if (status.Type != FileType.Socket)
        {
            return Found.NotASocket;
        }

        foreach (SocketType type in new[] { SocketType.Stream, SocketType.Seqpacket, SocketType.Dgram })
        {
            using var probe = new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified) { Blocking = false };
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                return Found.Live;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ProtocolType)
            {
                // Another type of socket: try the next.
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                return Found.Stale;
            }
            catch (SocketException)
            {
                // A full queue (EAGAIN), or no permission: someone's, and left alone.
                return Found.Live;
            }
        }

        return Found.Live;
    }

    /// <summary>
    /// Removes <paramref name="path"/> when it is a socket nobody accepts on; false when it is
    /// something else, or a live socket (a next generation's), which stay.
    /// </summary>
    public static bool RemoveIfStale(string path) => Probe(path) == Found.Stale && Posix.Unlink(path, out _) == 0;
}
