using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using Daemon.Interop;

namespace Daemon.Handover;

/// <summary>
/// Where a running daemon and the next generation meet: an abstract Unix socket (SOCK_SEQPACKET)
/// whose name is a prefix derived from the pid file plus a random part chosen at each start.
/// </summary>
/// <remarks>
/// Abstract names have no permissions: anyone can bind a name first. A random part means a name
/// taken by someone else never blocks the daemon, and the next generation finds its channel not by
/// a name it can predict but among the listening sockets of that prefix (/proc/net/unix), keeping
/// only the one whose peer credentials name the pid file's lock holder. The prefix comes from the
/// pid file's folder (device and inode, so a symlinked folder or a bind mount gives the same one)
/// and name; two daemons with the same pid file path in different mount namespaces that share a
/// network namespace get different prefixes, and the peer check tells them apart in any case.
/// </remarks>
internal static class ControlChannel
{
    private const string Namespace = "daemon.net:";

    // /proc/net/unix: a SOCK_SEQPACKET socket.
    private const int SeqPacket = 5;

    /// <summary>The name part shared by every channel of the daemon whose pid file is <paramref name="pidFile"/>.</summary>
    public static string Prefix(string pidFile)
    {
        string folder = Path.GetDirectoryName(pidFile) ?? "/";
        string identity = Posix.Lstat(Path.Combine(folder, "."), out FileStatus status, out _) == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{status.Device}:{status.Inode}/{Path.GetFileName(pidFile)}")
            : pidFile;
        return Namespace + Hash(Encoding.UTF8.GetBytes(identity)) + ":";
    }

    /// <summary>
    /// 128 bits of FNV-1a, twice with other offsets: a name, not a secret (the peer check is what
    /// trusts), and no cryptography library to load into every daemon.
    /// </summary>
    private static string Hash(ReadOnlySpan<byte> data)
    {
        ulong a = 14695981039346656037UL, b = 0x6c62272e07bb0142UL;
        foreach (byte x in data)
        {
            a = (a ^ x) * 1099511628211UL;
            b = (b ^ x) * 1099511628211UL;
        }

        return string.Create(CultureInfo.InvariantCulture, $"{a:x16}{b:x16}");
    }

    /// <summary>Binds and listens on a fresh channel of <paramref name="pidFile"/>'s daemon; its accept loop is the caller's.</summary>
    /// <exception cref="SocketException">Binding failed (a name clash of 128 random bits is retried once).</exception>
    public static Socket Open(string pidFile, int backlog)
    {
        for (int attempt = 0; ; attempt++)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
            try
            {
                socket.Bind(new UnixDomainSocketEndPoint("\0" + Prefix(pidFile) + RandomPart()));
                socket.Listen(backlog);
                return socket;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && attempt == 0)
            {
                socket.Dispose();
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }

    /// <summary>
    /// 128 bits nobody else can guess before the bind: Random.Shared is seeded from the kernel's
    /// random source at start-up, and reading it loads no cryptography library.
    /// </summary>
    private static string RandomPart()
    {
        Span<byte> bytes = stackalloc byte[16];
        Random.Shared.NextBytes(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    /// <summary>
    /// Connects to the channel of <paramref name="holder"/>, the daemon that holds
    /// <paramref name="pidFile"/>; null when it has none (it predates channels, listens on nothing
    /// through the library, or is handing over right now and has closed its own).
    /// </summary>
    /// <param name="pidFile">The pid file.</param>
    /// <param name="holder">The pid the pid file's lock names.</param>
    /// <param name="deadline">When to give up, in <see cref="Environment.TickCount64"/> milliseconds.</param>
    /// <exception cref="TimeoutException">The channel exists but its backlog stayed full until the deadline.</exception>
    public static Socket? Connect(string pidFile, int holder, long deadline)
    {
        bool busy = false;
        foreach (string name in Candidates(Prefix(pidFile), holder))
        {
            Socket? connection = TryConnect(name, holder, deadline, ref busy);
            if (connection is not null)
            {
                return connection;
            }
        }

        return busy ? throw new TimeoutException("its control socket accepted no connection") : null;
    }

    /// <summary>
    /// The listening channels of <paramref name="prefix"/>: only the holder's own when its
    /// descriptors are readable (root, or its own user), else every one, to be checked by peer pid.
    /// </summary>
    private static List<string> Candidates(string prefix, int holder)
    {
        HashSet<ulong>? held = UnixSockets.InodesHeldBy(holder);
        var names = new List<string>();
        foreach (UnixSockets.Listener listener in UnixSockets.Listening())
        {
            if (listener.Type == SeqPacket && listener.Name.StartsWith("@" + prefix, StringComparison.Ordinal) && (held is null || held.Contains(listener.Inode)))
            {
                names.Add(listener.Name[1..]);
            }
        }

        return names;
    }

    /// <summary>A connection to <paramref name="name"/> when its listener is <paramref name="holder"/>; null otherwise.</summary>
    private static Socket? TryConnect(string name, int holder, long deadline, ref bool busy)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified) { Blocking = false };
        try
        {
            while (true)
            {
                try
                {
                    socket.Connect(new UnixDomainSocketEndPoint("\0" + name));
                    break;
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.TryAgain && Environment.TickCount64 < deadline)
                {
                    // A full backlog (a flood of other connections): the daemon drains it quickly.
                    busy = true;
                    Thread.Sleep(5);
                }
            }

            // The listener's credentials, as of its listen(): whoever bound this name.
            if (Posix.PeerCredentials((int)socket.Handle, out int pid, out _, out _) < 0 || pid != holder)
            {
                socket.Dispose();
                return null;
            }

            socket.Blocking = true;
            return socket;
        }
        catch (SocketException)
        {
            // Gone, refused, or still full at the deadline: not this one.
            socket.Dispose();
            return null;
        }
    }
}
