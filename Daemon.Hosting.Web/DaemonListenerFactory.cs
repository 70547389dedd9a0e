using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Daemon.Hosting.Web;

/// <summary>
/// Kestrel's socket transport, binding every endpoint through the daemon's listeners, so that a
/// zero-downtime restart hands them over; registered last, it is the transport Kestrel uses for
/// TCP and Unix endpoints (and <c>ListenHandle</c>'s, which it binds as the socket transport does).
/// It notes every connection accepted (see <see cref="ConnectionDrain"/>) and can stop accepting
/// without closing a connection.
/// </summary>
internal sealed class DaemonListenerFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly SocketTransportFactory _sockets;
    private readonly ConnectionDrain _drain;
    private readonly List<Listener> _listeners = new();
    private readonly HashSet<int> _anyIPv4 = new();
    private readonly HashSet<int> _ipv6Only = new();
    private readonly Action<string> _warn;

    /// <param name="options">The application's socket transport options, whose other settings stay.</param>
    /// <param name="listen">The daemon's <c>Listen</c>: the socket for a name and an endpoint.</param>
    /// <param name="drain">Where each accept is noted.</param>
    /// <param name="loggerFactory">The socket transport's loggers.</param>
    /// <param name="warn">Writes a warning line to the daemon's log.</param>
    public DaemonListenerFactory(SocketTransportOptions options, Func<string, EndPoint, Socket> listen, ConnectionDrain drain, ILoggerFactory loggerFactory, Action<string> warn)
    {
        Func<EndPoint, Socket> bindDefault = options.CreateBoundListenSocket;
        var ours = new SocketTransportOptions
        {
            IOQueueCount = options.IOQueueCount,
            WaitForDataBeforeAllocatingBuffer = options.WaitForDataBeforeAllocatingBuffer,
            NoDelay = options.NoDelay,
            Backlog = options.Backlog,
            MaxReadBufferSize = options.MaxReadBufferSize,
            MaxWriteBufferSize = options.MaxWriteBufferSize,
            UnsafePreferInlineScheduling = options.UnsafePreferInlineScheduling,
            // A descriptor the application passed (ListenHandle) is its own; the rest are the daemon's.
            CreateBoundListenSocket = endpoint => endpoint is FileHandleEndPoint ? bindDefault(endpoint) : Listen(listen, endpoint),
        };
        _sockets = new SocketTransportFactory(Microsoft.Extensions.Options.Options.Create(ours), loggerFactory);
        _drain = drain;
        _warn = warn;
    }

    /// <summary>
    /// Once every endpoint is bound: warns of each [::] listener that takes IPv6 clients only with
    /// no 0.0.0.0 one on its port. Kestrel binds [::] dual-stack; the daemon's Listen binds it with
    /// IPV6_V6ONLY, which no option changes once the socket is bound.
    /// </summary>
    public void WarnOfIPv6OnlyPorts()
    {
        lock (_anyIPv4)
        {
            foreach (int port in _ipv6Only.Except(_anyIPv4))
            {
                _warn($"[::]:{port} takes IPv6 clients only; for IPv4 ones too, listen on 0.0.0.0 as well (--urls \"http://0.0.0.0:{port};http://[::]:{port}\")");
            }
        }
    }

    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint or UnixDomainSocketEndPoint or FileHandleEndPoint;

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var listener = new Listener(await _sockets.BindAsync(endpoint, cancellationToken).ConfigureAwait(false), _drain);
        lock (_listeners)
        {
            _listeners.Add(listener);
        }

        return listener;
    }

    /// <summary>
    /// Stops accepting on every endpoint, leaving what is queued to whoever else holds the socket
    /// (the next generation); Kestrel's own accept loops then end, and its connections go on.
    /// </summary>
    public async Task StopAcceptingAsync(CancellationToken cancellationToken)
    {
        Listener[] listeners;
        lock (_listeners)
        {
            listeners = _listeners.ToArray();
        }

        foreach (Listener listener in listeners)
        {
            await listener.StopAcceptingAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The daemon's listener for a Kestrel endpoint, named after its address: a restart with the
    /// same configuration finds it by name, one with another finds it by address or binds anew.
    /// A bind error is the socket's own, so Kestrel reports it as it does without a daemon.
    /// </summary>
    private Socket Listen(Func<string, EndPoint, Socket> listen, EndPoint endpoint)
    {
        try
        {
            Socket socket = listen(endpoint.ToString() ?? endpoint.AddressFamily.ToString(), endpoint);
            if (endpoint is IPEndPoint { Port: var port } ip && (ip.Address.Equals(IPAddress.Any) || (ip.Address.Equals(IPAddress.IPv6Any) && socket.DualMode)))
            {
                lock (_anyIPv4)
                {
                    _anyIPv4.Add(port);
                }
            }
            else if (endpoint is IPEndPoint { Port: var v6Port } ip6 && ip6.Address.Equals(IPAddress.IPv6Any))
            {
                lock (_anyIPv4)
                {
                    _ipv6Only.Add(v6Port);
                }
            }

            return socket;
        }
        catch (DaemonException e) when (e.InnerException is SocketException socketError)
        {
            // Kestrel reports a SocketException (address in use...) in its own words; keep its stack.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(socketError);
            throw;
        }
    }

    /// <summary>
    /// The socket transport's listener, noting its accepts for the drain, and stopping them without
    /// an abortive close: .NET closes a socket disposed under a pending accept with SO_LINGER 0, set
    /// on the socket itself, which the next generation holds too, and every connection it accepts
    /// from then on inherits it and ends with a reset instead of a FIN (its unsent bytes dropped).
    /// So the pending accept is cancelled first, and the descriptor closed once none is under way.
    /// </summary>
    private sealed class Listener : IConnectionListener
    {
        private readonly IConnectionListener _inner;
        private readonly ConnectionDrain _drain;
        private readonly object _gate = new();
        private readonly CancellationTokenSource _stopping = new();
        private int _accepting;
        private bool _stopped;
        private TaskCompletionSource? _idle;

        public Listener(IConnectionListener inner, ConnectionDrain drain)
        {
            _inner = inner;
            _drain = drain;
        }

        public EndPoint EndPoint => _inner.EndPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            lock (_gate)
            {
                if (_stopped)
                {
                    // Kestrel's accept loop ends on null.
                    return null;
                }

                _accepting++;
            }

            _drain.AcceptStarting();
            ConnectionContext? connection = null;
            try
            {
                using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
                connection = await _inner.AcceptAsync(cancel.Token).ConfigureAwait(false);
                return connection;
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                // Cancelled by the stop; an accept the kernel completed meanwhile returned its connection above.
                return null;
            }
            finally
            {
                _drain.AcceptEnded(connection);
                lock (_gate)
                {
                    if (--_accepting == 0 && _stopped)
                    {
                        _idle?.TrySetResult();
                    }
                }
            }
        }

        /// <summary>Cancels the accept under way, waits for it to end, then closes this generation's descriptor.</summary>
        public async Task StopAcceptingAsync(CancellationToken cancellationToken)
        {
            Task idle;
            lock (_gate)
            {
                _stopped = true;
                _idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                if (_accepting == 0)
                {
                    _idle.TrySetResult();
                }

                idle = _idle.Task;
            }

            // Outside the lock: cancelling runs the socket's cancellation at once.
            await _stopping.CancelAsync().ConfigureAwait(false);
            await idle.WaitAsync(cancellationToken).ConfigureAwait(false);
            await _inner.UnbindAsync(cancellationToken).ConfigureAwait(false);
        }

        /// <summary>Kestrel's own stop (or a failed start) unbinds the same way.</summary>
        public ValueTask UnbindAsync(CancellationToken cancellationToken = default) => new(StopAcceptingAsync(cancellationToken));

        // _stopping has no timer, so nothing to dispose: an accept that starts late still reads its token.
        public ValueTask DisposeAsync() => _inner.DisposeAsync();
    }
}
