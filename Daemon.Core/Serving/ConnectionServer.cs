using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Daemon.Interop;
using Daemon.Logging;

namespace Daemon.Serving;

/// <summary>
/// Serves one listener's connections, each with the daemon's handler, and stops the way a daemon
/// must (see <see cref="DaemonBase.ServeAsync"/>): at stop it takes what is queued and ends each
/// connection's input once it is quiet, so every client gets the answer to what it sent; after a
/// handover it leaves the queue to the successor and lets its clients end their connections; at
/// the drain deadline it closes whatever is left. It never shuts the listener down: a successor
/// may hold the same socket.
/// </summary>
internal sealed class ConnectionServer
{
    /// <summary>How long a connection's input may stay quiet at stop before it ends: bytes in flight.</summary>
    internal static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(200);

    private readonly Socket _listener;
    private readonly Func<Socket, CancellationToken, Task> _handler;
    private readonly DaemonLog _log;
    private readonly TimeSpan _grace;
    private readonly Func<bool> _handedOver;
    private readonly long _descriptorLimit;
    private readonly Func<int, int>? _lowestFree;
    private readonly ConcurrentDictionary<int, (Socket Client, Task Serving)> _open = new();
    private readonly CancellationTokenSource _deadline = new();
    // Guards _finishing, and keeps the drain's shutdowns of a connection and its close from overlapping.
    private readonly object _gate = new();
    private bool _finishing;
    private int _next;

    /// <param name="listener">The listening socket; this server closes its own descriptor of it when it stops accepting.</param>
    /// <param name="handler">Serves one connection; its token fires at the drain deadline.</param>
    /// <param name="log">The daemon's log.</param>
    /// <param name="grace">From the stop request to the drain deadline.</param>
    /// <param name="handedOver">True when the listener went to the next generation (asked at stop).</param>
    /// <param name="descriptorLimit">The soft RLIMIT_NOFILE, for the back-off (for testing; else read here).</param>
    /// <param name="lowestFree">
    /// For testing: the lowest free descriptor number given how many connections are open, in
    /// place of the process's real one, which any thread of it moves.
    /// </param>
    public ConnectionServer(Socket listener, Func<Socket, CancellationToken, Task> handler, DaemonLog log, TimeSpan grace, Func<bool> handedOver, long? descriptorLimit = null, Func<int, int>? lowestFree = null)
    {
        _listener = listener;
        _handler = handler;
        _log = log;
        _grace = grace;
        _handedOver = handedOver;
        _descriptorLimit = descriptorLimit ?? Posix.DescriptorLimit();
        _lowestFree = lowestFree;
    }

    /// <summary>Accepts and serves until <paramref name="stopping"/> fires, then drains as the class says.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        // Off the caller's thread from here: the back-off's pauses may block the thread they run on.
        await Task.Yield();
        await WarmUp.RunAsync(_log).ConfigureAwait(false);
        var backoff = new AcceptBackoff(_log, () => _open.Count, _descriptorLimit, _lowestFree);
        // Closed (our descriptor only) once accepting ends: nothing new is queued for us while the open ones drain.
        using (_listener)
        {
            await AcceptUntilStopAsync(backoff, stopping).ConfigureAwait(false);
            _deadline.CancelAfter(_grace);
            _deadline.Token.Register(EndAll);
            if (_handedOver())
            {
                _log.Line($"handed over: the next generation accepts from here; serving the {_open.Count} open connection(s) until their clients close them, for up to {_grace.TotalSeconds:0.###} s");
            }
            else
            {
                _ = FinishAfterSettleAsync();
                await AcceptQueuedAsync(backoff).ConfigureAwait(false);
            }
        }

        await DrainAsync().ConfigureAwait(false);
        _deadline.Dispose();
    }

    private async Task AcceptUntilStopAsync(AcceptBackoff backoff, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            if (!backoff.MayAccept(_listener))
            {
                await backoff.PauseAsync(stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                continue;
            }

            // Awaited without throwing: a stop is the normal way out of this loop, not an error.
            // The token cancels the pending accept without shutting the socket down, and the
            // listener stays open until the loop ends, so AcceptAsync never meets it disposed.
            Task<Socket> accepting = _listener.AcceptAsync(stopping).AsTask();
            await ((Task)accepting).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (accepting.IsCompletedSuccessfully)
            {
                Serve(accepting.Result, backoff);
            }
            else if (stopping.IsCancellationRequested)
            {
                break;
            }
            else if (AcceptBackoff.IsShortage(accepting.Exception?.InnerException))
            {
                await backoff.PauseAsync(stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            else if (accepting.Exception?.InnerException is not SocketException { SocketErrorCode: SocketError.ConnectionAborted or SocketError.ConnectionReset }
                and { } failure)
            {
                // A client that gave up in the queue is no fault of ours; anything else would repeat.
                throw new DaemonException($"cannot accept connections: {failure.Message}", failure);
            }
        }
    }

    /// <summary>
    /// Accepts, after the stop request, the connections already in the listener's queue: closing
    /// the listener would reset them, though their clients connected and sent before the stop.
    /// The listener is only polled (poll with a zero timeout), never made non-blocking nor shut
    /// down: both would act on every process that holds the same socket.
    /// </summary>
    private async Task AcceptQueuedAsync(AcceptBackoff backoff)
    {
        int accepted = 0;
        while (!_deadline.IsCancellationRequested && _listener.Poll(0, SelectMode.SelectRead))
        {
            if (!backoff.MayAccept(_listener))
            {
                // Wait for open connections to finish and give descriptors back, within the grace period.
                await backoff.PauseAsync(_deadline.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                continue;
            }

            // Bounded: another holder of the socket may take the connection between poll and accept.
            // Generously: a cancelled accept racing a connection the kernel just handed over could
            // cost that client, and a busy machine may run this continuation late.
            using var brief = CancellationTokenSource.CreateLinkedTokenSource(_deadline.Token);
            brief.CancelAfter(TimeSpan.FromSeconds(1));
            Task<Socket> accepting = _listener.AcceptAsync(brief.Token).AsTask();
            await ((Task)accepting).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (accepting.IsCompletedSuccessfully)
            {
                accepted++;
                Serve(accepting.Result, backoff);
            }
            else if (AcceptBackoff.IsShortage(accepting.Exception?.InnerException))
            {
                await backoff.PauseAsync(_deadline.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            else if (!brief.IsCancellationRequested)
            {
                break;
            }
        }

        if (accepted > 0)
        {
            _log.Line($"accepted {accepted} queued connection(s) after the stop request");
        }
    }

    private void Serve(Socket client, AcceptBackoff backoff)
    {
        int id = Interlocked.Increment(ref _next);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task serving = ServeAsync(id, client, started.Task);
        lock (_gate)
        {
            _open[id] = (client, serving);
            if (_finishing)
            {
                EndInput(client);
            }
        }

        backoff.Accepted(_listener);
        started.SetResult();
    }

    private async Task ServeAsync(int id, Socket client, Task registered)
    {
        // The handler runs once the connection is counted: the back-off and the drain see it.
        await registered.ConfigureAwait(false);
        try
        {
            await _handler(client, _deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away, or the drain deadline came.
        }
        catch (Exception e)
        {
            _log.Line(LogSeverity.Warning, $"connection handler failed: {e}");
        }
        finally
        {
            // Never while the drain shuts this connection down on another thread: .NET resets a
            // connection it closes under another thread's call on the socket (it disconnects it to
            // wake that call), and the client would get a reset instead of its end-of-file.
            lock (_gate)
            {
                client.Dispose();
                _open.TryRemove(id, out _);
            }
        }
    }

    /// <summary>
    /// At stop, once bytes in flight have arrived: each connection's input ends after what its
    /// client sent, so a handler's next receive returns 0 once it has read that (shutdown of the
    /// receive side of a connection, never of the listener).
    /// </summary>
    private async Task FinishAfterSettleAsync()
    {
        await Task.Delay(Settle, _deadline.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        lock (_gate)
        {
            _finishing = true;
            foreach ((Socket client, _) in _open.Values)
            {
                EndInput(client);
            }
        }
    }

    private async Task DrainAsync()
    {
        if (_open.IsEmpty)
        {
            _log.Line("stopped accepting; no connections to drain");
            return;
        }

        _log.Line($"stopped accepting; draining {_open.Count} connection(s) for up to {_grace.TotalSeconds:0.###} s");
        var clock = Stopwatch.StartNew();
        while (_open.Values is { Count: > 0 } left)
        {
            await Task.WhenAll(Array.ConvertAll([.. left], c => c.Serving)).ConfigureAwait(false);
        }

        _log.Line($"all connections closed after {clock.Elapsed.TotalSeconds:0.###} s");
    }

    /// <summary>
    /// The drain deadline: the handlers' token fires, and each connection still open is shut down
    /// both ways, so that a handler that does not watch its token is woken too and its client gets
    /// an orderly end-of-file (a close under a pending receive would reset the connection).
    /// </summary>
    private void EndAll()
    {
        if (!_open.IsEmpty)
        {
            _log.Line(LogSeverity.Warning, $"drain deadline: closing the {_open.Count} connection(s) still open");
        }

        lock (_gate)
        {
            foreach ((Socket client, _) in _open.Values)
            {
                try
                {
                    client.Shutdown(SocketShutdown.Both);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    // Gone already.
                }
            }
        }
    }

    private static void EndInput(Socket client)
    {
        try
        {
            client.Shutdown(SocketShutdown.Receive);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Gone already.
        }
    }
}
