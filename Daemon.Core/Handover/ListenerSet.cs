using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using Daemon.Files;
using Daemon.Interop;
using Daemon.Logging;

namespace Daemon.Handover;

/// <summary>
/// The listening sockets of this generation, by name: those inherited from the previous one on a
/// zero-downtime restart, claimed by name or else by local address, and those bound afresh. What
/// this generation listens on is what it hands over to the next.
/// </summary>
internal sealed class ListenerSet
{
    private readonly object _gate = new();
    private readonly List<(string Name, Socket Socket)> _own = new();
    private readonly List<(Socket Socket, string Path)> _socketFiles = new();
    private readonly List<string> _unclaimedFiles = new();
    private readonly HashSet<Socket> _handedOver = new();
    private readonly List<(string Name, Socket Socket)> _inherited = new();
    private readonly HashSet<Socket> _notOurFiles = new();
    private readonly HashSet<Socket> _fromSocketUnit = new();
    private readonly HashSet<Socket> _fromStore = new();
    private readonly HashSet<Socket> _stored = new();
    private readonly List<string> _unclaimedStored = new();
    private readonly List<string> _adopted = new();

    /// <summary>The sockets this generation listens on, by name, to hand over.</summary>
    public List<(string Name, Socket Socket)> Own
    {
        get
        {
            lock (_gate)
            {
                return new(_own);
            }
        }
    }

    /// <summary>The names, as the previous generation gave them, of the inherited listeners this one claimed.</summary>
    public IReadOnlyList<string> Adopted
    {
        get
        {
            lock (_gate)
            {
                return _adopted.ToArray();
            }
        }
    }

    /// <summary>How many inherited sockets wait to be claimed.</summary>
    public int InheritedCount
    {
        get
        {
            lock (_gate)
            {
                return _inherited.Count;
            }
        }
    }

    /// <summary>
    /// Keeps a socket the previous generation handed over (or systemd passed), until the startup
    /// hook claims it. What systemd passed is systemd's too: its socket file is never ours to remove.
    /// </summary>
    public void Inherit(string name, Socket socket, InheritedFrom from = InheritedFrom.Predecessor)
    {
        lock (_gate)
        {
            _inherited.Add((name, socket));
            if (from != InheritedFrom.Predecessor)
            {
                _notOurFiles.Add(socket);
            }

            _ = from switch
            {
                InheritedFrom.SocketUnit => _fromSocketUnit.Add(socket),
                InheritedFrom.FileDescriptorStore => _fromStore.Add(socket),
                _ => false,
            };
        }
    }

    /// <summary>
    /// The listener named <paramref name="name"/>: the inherited one of that name, or else the
    /// inherited one bound to <paramref name="endpoint"/>, or a fresh one bound and listening. One
    /// handed over by the previous generation, or kept in systemd's fd store, counts only if it is
    /// bound where <paramref name="endpoint"/> says (a restart with another <c>--port</c> listens
    /// there); one a socket unit passed counts by name wherever it is, as that unit decides the address.
    /// </summary>
    /// <exception cref="DaemonException">The endpoint cannot be bound.</exception>
    public Socket Listen(string name, EndPoint endpoint, int backlog, DaemonLog log)
    {
        lock (_gate)
        {
            if (_own.Exists(l => l.Name == name))
            {
                throw new ArgumentException($"a listener named '{name}' exists already", nameof(name));
            }

            int index = _inherited.FindIndex(l => l.Name == name);
            if (index >= 0 && !_fromSocketUnit.Contains(_inherited[index].Socket) && !SameAddress(_inherited[index].Socket, endpoint))
            {
                string how = _fromStore.Contains(_inherited[index].Socket) ? "kept in systemd's fd store" : "handed over";
                log.Line($"'{name}' was {how} bound to {Describe(_inherited[index].Socket.LocalEndPoint)}, not {Describe(endpoint)}: listening there instead");
                index = -1;
            }

            if (index < 0)
            {
                index = _inherited.FindIndex(l => SameAddress(l.Socket, endpoint));
            }

            Socket socket;
            if (index >= 0)
            {
                socket = _inherited[index].Socket;
                _adopted.Add(_inherited[index].Name);
                _inherited.RemoveAt(index);
                log.Line($"listening on {Describe(socket.LocalEndPoint)} (inherited as '{name}')");
            }
            else
            {
                socket = BindOrSay(endpoint, backlog);
                log.Line($"listening on {Describe(socket.LocalEndPoint ?? endpoint)}");
            }

            _own.Add((name, socket));
            if (!_notOurFiles.Contains(socket) && UnixPath(socket.LocalEndPoint ?? endpoint) is { } file)
            {
                // Noted now: the daemon may have closed its Socket by the time the files go.
                _socketFiles.Add((socket, file));
            }

            return socket;
        }
    }

    /// <summary>Closes the inherited sockets nothing claimed, saying which.</summary>
    public void CloseUnclaimed(DaemonLog log)
    {
        lock (_gate)
        {
            foreach ((string name, Socket socket) in _inherited)
            {
                bool stored = _fromStore.Contains(socket);
                log.Line(LogSeverity.Warning, $"inherited listener '{name}' on {Describe(socket.LocalEndPoint)} was not claimed; closing it"
                    + (stored ? " and removing it from systemd's fd store" : ""));
                if ((stored || !_notOurFiles.Contains(socket)) && socket.LocalEndPoint is { } bound && UnixPath(bound) is { } file)
                {
                    // No generation accepts on it once the previous one (or systemd) lets go: see RemoveUnclaimedSocketFiles.
                    _unclaimedFiles.Add(file);
                }

                if (stored)
                {
                    _unclaimedStored.Add(name);
                }

                socket.Dispose();
            }

            _inherited.Clear();
        }
    }

    /// <summary>
    /// The names of the listeners systemd passed back from its fd store that nothing claimed
    /// (closed by <see cref="CloseUnclaimed"/>): they are to leave the store too.
    /// </summary>
    public IReadOnlyList<string> UnclaimedStored
    {
        get
        {
            lock (_gate)
            {
                return _unclaimedStored.ToArray();
            }
        }
    }

    /// <summary>
    /// This generation's listeners that systemd holds no copy of (bound here or handed over by the
    /// previous generation), by name: those to put in its fd store.
    /// </summary>
    public IReadOnlyList<(string Name, Socket Socket)> NotKeptBySystemd
    {
        get
        {
            lock (_gate)
            {
                return _own.Where(l => !_notOurFiles.Contains(l.Socket)).ToArray();
            }
        }
    }

    /// <summary>How many of this generation's listeners systemd passed back from its fd store.</summary>
    public int FromStoreCount
    {
        get
        {
            lock (_gate)
            {
                return _own.Count(l => _fromStore.Contains(l.Socket));
            }
        }
    }

    /// <summary>
    /// Notes that systemd keeps <paramref name="socket"/> in its fd store from now on: it outlives
    /// this generation, so its socket file stays (see <see cref="RemoveSocketFiles"/>).
    /// </summary>
    public void MarkStored(Socket socket)
    {
        lock (_gate)
        {
            _stored.Add(socket);
        }
    }

    /// <summary>
    /// At a stop: the listeners systemd holds a copy of (passed by a socket unit or from the fd
    /// store, or stored since) lose close-on-exec, so that closing them here, whatever is under way
    /// on them, never shuts them down: .NET spares a socket that may be shared (see
    /// <see cref="MarkHandedOver"/>), and the next start is passed the same socket.
    /// </summary>
    public void ShareWithSystemd()
    {
        lock (_gate)
        {
            foreach ((_, Socket socket) in _own.Where(l => _notOurFiles.Contains(l.Socket) || _stored.Contains(l.Socket)))
            {
                KeepShared(socket);
            }
        }
    }

    /// <summary>
    /// Notes which listeners the next generation adopted, once it committed. Those are shared from
    /// now on: their close-on-exec flag is cleared, so that closing them here never shuts them down
    /// (see <c>DaemonRuntime.HandedOver</c>), and their queue is the successor's. The others stay
    /// ours: drained as at stop, and their socket files removed when this generation ends.
    /// The flag does not spare them .NET's abortive close of a socket disposed under a pending
    /// accept, which sets SO_LINGER 0 on the shared socket: whoever accepts on them cancels its
    /// accept before closing (ConnectionServer, WebDaemon's listener factory).
    /// </summary>
    /// <param name="adoptedNames">The names the next generation took, as given to <see cref="Listen"/>.</param>
    public void MarkHandedOver(IReadOnlyCollection<string> adoptedNames)
    {
        lock (_gate)
        {
            foreach ((string name, Socket socket) in _own)
            {
                if (!adoptedNames.Contains(name))
                {
                    continue;
                }

                _handedOver.Add(socket);
                KeepShared(socket);
            }
        }
    }

    /// <summary>True when <paramref name="socket"/> went to the next generation (see <see cref="MarkHandedOver"/>).</summary>
    public bool IsHandedOver(Socket socket)
    {
        lock (_gate)
        {
            return _handedOver.Contains(socket);
        }
    }

    /// <summary>Closes this generation's descriptors of its listeners; a next generation keeps its own.</summary>
    public void CloseAll()
    {
        lock (_gate)
        {
            _own.ForEach(l => l.Socket.Dispose());
            _inherited.ForEach(l => l.Socket.Dispose());
            _inherited.Clear();
        }
    }

    /// <summary>
    /// Removes the files of this generation's Unix listeners that no next generation holds and
    /// systemd does not keep: nothing will accept on them again.
    /// </summary>
    public void RemoveSocketFiles()
    {
        lock (_gate)
        {
            foreach ((Socket socket, string path) in _socketFiles)
            {
                if (!_handedOver.Contains(socket) && !_stored.Contains(socket))
                {
                    RemoveSocket(path);
                }
            }
        }
    }

    /// <summary>
    /// Removes the files of the Unix listeners the previous generation handed over (or systemd kept
    /// in its fd store) and this one did not claim (a restart without the option that named them),
    /// once that generation (or the store) has let go: no later generation will know of them.
    /// </summary>
    public void RemoveUnclaimedSocketFiles()
    {
        lock (_gate)
        {
            _unclaimedFiles.ForEach(RemoveSocket);
            _unclaimedFiles.Clear();
        }
    }

    /// <summary>
    /// Clears close-on-exec on a listener another process holds too: .NET then never shuts it down
    /// when this process closes it with an accept under way (which would stop the other's copy).
    /// </summary>
    private static void KeepShared(Socket socket)
    {
        try
        {
            _ = Posix.SetCloseOnExec((int)socket.Handle, false);
        }
        catch (ObjectDisposedException)
        {
            // Closed already by the daemon: nothing left to protect.
        }
    }

    private static void RemoveSocket(string path)
    {
        if (Posix.Lstat(path, out FileStatus status, out _) == 0 && status.Type == FileType.Socket)
        {
            _ = Posix.Unlink(path, out _);
        }
    }

    /// <summary>The file of a Unix socket endpoint; null for an abstract one or another family.</summary>
    private static string? UnixPath(EndPoint endpoint) =>
        endpoint is UnixDomainSocketEndPoint && endpoint.ToString() is { Length: > 0 } path && path[0] is not ('\0' or '@') ? path : null;

    public static string Describe(EndPoint? endpoint) => endpoint switch
    {
        UnixDomainSocketEndPoint unix => PathText.Quote(unix.ToString()),
        null => "?",
        _ => endpoint.ToString() ?? "?",
    };

    private static bool SameAddress(Socket socket, EndPoint endpoint)
    {
        try
        {
            // Port 0 asks for any free port: the one the socket got is as good as any.
            if (endpoint is IPEndPoint { Port: 0 } any && socket.LocalEndPoint is IPEndPoint bound)
            {
                return any.Address.Equals(bound.Address);
            }

            return Equals(socket.LocalEndPoint, endpoint) || socket.LocalEndPoint?.ToString() == endpoint.ToString();
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// <see cref="Bind"/>, saying why the runtime's socket engine could not start: the first socket
    /// starts it (epoll, a pipe), and out of descriptors its type initializer fails with the errno
    /// name only in an inner exception's text.
    /// </summary>
    private static Socket BindOrSay(EndPoint endpoint, int backlog)
    {
        try
        {
            return Bind(endpoint, backlog);
        }
        catch (TypeInitializationException e)
        {
            string reason = e.InnerException?.Message.Contains("EMFILE", StringComparison.Ordinal) == true
                ? "Too many open files"
                : $"the runtime's socket engine did not start ({e.InnerException?.Message})";
            throw new DaemonException($"cannot listen on {Describe(endpoint)}: {reason}", e);
        }
    }

    private static Socket Bind(EndPoint endpoint, int backlog)
    {
        if (UnixPath(endpoint) is { } path)
        {
            return BindUnix(path, backlog);
        }

        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, endpoint is UnixDomainSocketEndPoint ? ProtocolType.Unspecified : ProtocolType.Tcp);
        try
        {
            socket.Bind(endpoint);
            socket.Listen(backlog);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new DaemonException($"cannot listen on {Describe(endpoint)}: {e.Message}", e);
        }
    }

    /// <summary>
    /// A Unix socket file bound here, not by System.Net.Sockets (which would delete the file when
    /// this generation closes its Socket, under the next generation's feet), then adopted.
    /// </summary>
    private static Socket BindUnix(string path, int backlog)
    {
        RemoveStaleSocketFile(path);
        int fd = Posix.BindUnixSocket(path, out int errno);
        if (fd < 0)
        {
            throw DaemonException.FromErrno($"cannot listen on {PathText.Quote(path)}", errno);
        }

        var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        try
        {
            socket.Listen(backlog);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new DaemonException($"cannot listen on {PathText.Quote(path)}: {e.Message}", e);
        }
    }

    /// <summary>
    /// A socket file nobody accepts on any more (its daemon died) may be replaced; a live one, or
    /// anything that is not a socket, stays and the bind fails.
    /// </summary>
    private static void RemoveStaleSocketFile(string path)
    {
        switch (SocketFiles.Probe(path))
        {
            case SocketFiles.Found.NotASocket:
                throw new DaemonException($"cannot listen on {PathText.Quote(path)}: it exists and is not a socket");
            case SocketFiles.Found.Live:
                throw new DaemonException($"cannot listen on {PathText.Quote(path)}: another process accepts on it");
            case SocketFiles.Found.Stale when Posix.Unlink(path, out int errno) < 0 && errno != Errno.ENOENT:
                throw DaemonException.FromErrno($"cannot remove the stale socket {PathText.Quote(path)}", errno);
        }
    }
}
