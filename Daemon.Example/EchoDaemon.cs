using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Win32.SafeHandles;

namespace Daemon.Example;

/// <summary>
/// A TCP echo server on 127.0.0.1, daemonized by Daemon.NET. It binds in the startup hook (so a
/// taken port fails <c>start</c>), serves many clients at once, and on SIGTERM stops accepting and
/// drains open connections for a grace period bounded by the stop timeout.
/// </summary>
public sealed class EchoDaemon : DaemonBase
{
    private readonly ConcurrentDictionary<int, Task> _connections = new();
    private Socket? _listener;
    private long _descriptorLimit = long.MaxValue;
    private int _healthChecks;
    private int _nextConnection;
    private volatile string? _greeting;

    /// <summary>The TCP port (<c>--port</c>). Default: 8007.</summary>
    public int Port { get; set; } = 8007;

    /// <summary>A file whose first line greets each client (<c>--greeting-file</c>); re-read on reload.</summary>
    public string? GreetingFile { get; set; }

    /// <summary>
    /// A fault to act out, for drills and the reliability tests (<c>--simulate-fault</c>):
    /// <c>startup-throws</c>, <c>run-throws</c>, <c>ignore-stop</c> or <c>unhealthy</c> (the health
    /// check behind the systemd watchdog fails from its fourth call on). Default: none.
    /// </summary>
    public string? SimulatedFault { get; set; }

    /// <inheritdoc/>
    protected override void ConfigureOptions(DaemonOptionSet options)
    {
        options.Add("--port", "N", "TCP port to listen on, on 127.0.0.1", v => Port = OptionValues.Port(v), () => Port.ToString(CultureInfo.InvariantCulture));
        options.Add("--greeting-file", "PATH", "send this file's first line to each client; reread on reload", v => GreetingFile = OptionValues.FullPath(v), () => GreetingFile);
        options.Add("--simulate-fault", "KIND", "fault drill: startup-throws, run-throws, ignore-stop or unhealthy", v => SimulatedFault = v is "startup-throws" or "run-throws" or "ignore-stop" or "unhealthy" ? v : throw new FormatException("expected startup-throws, run-throws, ignore-stop or unhealthy"));
    }

    /// <inheritdoc/>
    protected override Task OnStartupAsync(CancellationToken cancellationToken)
    {
        if (SimulatedFault == "startup-throws")
        {
            throw new InvalidOperationException("simulated startup fault");
        }

        LoadGreeting();
        // On a zero-downtime restart this is the running daemon's own socket: nothing is refused.
        _listener = Listen("echo", new IPEndPoint(IPAddress.Loopback, Port));
        _descriptorLimit = AcceptBackoff.DescriptorLimit();
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        switch (SimulatedFault)
        {
            case "run-throws":
                throw new InvalidOperationException("simulated fault in the main loop");
            case "ignore-stop":
                Log("simulating a main loop that ignores the stop request");
                await Task.Delay(Timeout.Infinite, CancellationToken.None).ConfigureAwait(false);
                break;
        }

        Socket listener = _listener!;
        // Half the stop timeout, from the stop request, for taking queued connections and draining all.
        TimeSpan grace = TimeSpan.FromTicks(Options.StopTimeout.Ticks / 2);
        using var closeConnections = new CancellationTokenSource();
        // Closed as soon as the loop ends: no new connection is queued while the open ones drain.
        using (listener)
        {
            using var backoff = new AcceptBackoff(this, _descriptorLimit);
            while (!stoppingToken.IsCancellationRequested)
            {
                if (!backoff.MayAccept)
                {
                    await backoff.PauseAsync(stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    continue;
                }

                // Awaited without throwing: a stop is the normal way out of this loop, not an error.
                // The token cancels the pending accept; the listener stays open until the loop ends,
                // so AcceptAsync never meets a socket disposed under it.
                Task<Socket> accepting = listener.AcceptAsync(stoppingToken).AsTask();
                await ((Task)accepting).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (!accepting.IsCompletedSuccessfully && stoppingToken.IsCancellationRequested)
                {
                    break;
                }

                if (AcceptBackoff.IsShortage(accepting.Exception?.InnerException))
                {
                    backoff.RanOut(accepting.Exception?.InnerException);
                    await backoff.PauseAsync(stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    continue;
                }

                Socket client = await accepting.ConfigureAwait(false);
                backoff.Accepted(client);
                Serve(client, stoppingToken, closeConnections.Token);
            }

            // The grace period runs from here: open connections drain while the queue is emptied.
            closeConnections.CancelAfter(grace);
            if (HandedOver)
            {
                // The next generation holds the same socket and accepts what is queued.
                Log("handed over: the next generation accepts from here");
            }
            else
            {
                await AcceptQueuedAsync(listener, backoff, grace, stoppingToken, closeConnections.Token).ConfigureAwait(false);
            }
        }

        // Drain: let clients get the echo of what they already sent, then close.
        if (_connections.IsEmpty)
        {
            Log("stopped accepting; no connections to drain");
            return;
        }

        Log($"stopped accepting; draining {_connections.Count} connection(s) for up to {grace.TotalSeconds:0.###} s");
        await Task.WhenAll(_connections.Values).ConfigureAwait(false);
        Log("all connections closed");
    }

    /// <inheritdoc/>
    protected override bool IsHealthy() => SimulatedFault != "unhealthy" || Interlocked.Increment(ref _healthChecks) <= 3;

    /// <inheritdoc/>
    protected override void OnReload()
    {
        LoadGreeting();
        Log(GreetingFile is null ? "reloaded (no greeting file)" : $"reloaded greeting from {GreetingFile}");
    }

    private void Serve(Socket client, CancellationToken stopping, CancellationToken closeNow)
    {
        int id = Interlocked.Increment(ref _nextConnection);
        Task serving = ServeAsync(id, client, stopping, closeNow);
        _connections[id] = serving;
        if (serving.IsCompleted)
        {
            // It ended before it was added (its own removal came first): do not keep it.
            _connections.TryRemove(id, out _);
        }
    }

    /// <summary>
    /// Accepts, after the stop request, the connections already in the listener's queue: closing
    /// the listener would reset them, though their clients connected and sent before the stop.
    /// The listener is only polled (poll with a zero timeout), never made non-blocking nor shut
    /// down: both would act on every process that holds the same socket.
    /// </summary>
    private async Task AcceptQueuedAsync(Socket listener, AcceptBackoff backoff, TimeSpan grace, CancellationToken stopping, CancellationToken closeNow)
    {
        var clock = Stopwatch.StartNew();
        int accepted = 0;
        while (clock.Elapsed < grace && listener.Poll(0, SelectMode.SelectRead))
        {
            if (!backoff.MayAccept)
            {
                // Wait for open connections to finish and give descriptors back, within the grace period.
                await backoff.PauseAsync(CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            // Bounded: another holder of the socket may take the connection between poll and accept.
            using var brief = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
            Task<Socket> accepting = listener.AcceptAsync(brief.Token).AsTask();
            await ((Task)accepting).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (accepting.IsCompletedSuccessfully)
            {
                accepted++;
                backoff.Accepted(accepting.Result);
                Serve(accepting.Result, stopping, closeNow);
            }
            else if (AcceptBackoff.IsShortage(accepting.Exception?.InnerException))
            {
                backoff.RanOut(accepting.Exception?.InnerException);
                await backoff.PauseAsync(CancellationToken.None).ConfigureAwait(false);
            }
            else if (!brief.IsCancellationRequested)
            {
                break;
            }
        }

        if (accepted > 0)
        {
            Log($"accepted {accepted} queued connection(s) after the stop request");
        }
    }

    private async Task ServeAsync(int id, Socket client, CancellationToken stopping, CancellationToken closeNow)
    {
        string peer = client.RemoteEndPoint?.ToString() ?? "?";
        Log($"connection {id} from {peer}");
        byte[] buffer = new byte[16 * 1024];
        try
        {
            using (client)
            {
                if (_greeting is { } greeting)
                {
                    await client.SendAsync(System.Text.Encoding.UTF8.GetBytes(greeting + "\n"), SocketFlags.None, closeNow).ConfigureAwait(false);
                }

                while (true)
                {
                    int n = await ReceiveAsync(client, buffer, stopping, closeNow).ConfigureAwait(false);
                    if (n <= 0)
                    {
                        break;
                    }

                    await client.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, closeNow).ConfigureAwait(false);
                }

                client.Shutdown(SocketShutdown.Both);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away, or the grace period ran out.
        }
        finally
        {
            _connections.TryRemove(id, out _);
            Log($"connection {id} from {peer} closed");
        }
    }

    /// <summary>
    /// Receives the next bytes. Once stopping, a connection that stays quiet for a moment is done:
    /// what it sent before the signal is already in the socket buffer and still gets its echo.
    /// </summary>
    private static async Task<int> ReceiveAsync(Socket client, byte[] buffer, CancellationToken stopping, CancellationToken closeNow)
    {
        if (!stopping.IsCancellationRequested)
        {
            try
            {
                return await client.ReceiveAsync(buffer, SocketFlags.None, stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested && !closeNow.IsCancellationRequested)
            {
                // Fall through to draining.
            }
        }

        using var quiet = CancellationTokenSource.CreateLinkedTokenSource(closeNow);
        quiet.CancelAfter(TimeSpan.FromMilliseconds(200));
        try
        {
            return await client.ReceiveAsync(buffer, SocketFlags.None, quiet.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
    }

    private void LoadGreeting()
    {
        if (GreetingFile is null)
        {
            _greeting = null;
            return;
        }

        try
        {
            using var reader = new StreamReader(GreetingFile);
            _greeting = reader.ReadLine() ?? "";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DaemonException($"cannot read greeting file {GreetingFile}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Paces accepting when descriptors run out (EMFILE, ENFILE). accept fails then without taking
    /// the connection off the queue, so retrying at once would spin; and the runtime itself needs
    /// descriptors (each new thread pool thread opens a pipe; a failure there ends the process), so
    /// accepting must not take the last ones. A reserve of descriptors is held from the start and
    /// given back at the first shortage; the number of connections open then becomes a ceiling,
    /// and accepting pauses at it while open connections go on being served. Logged once when an
    /// episode begins and once when it ends.
    /// </summary>
    private sealed class AcceptBackoff : IDisposable
    {
        private const int Reserve = 16;
        private static readonly TimeSpan _pause = TimeSpan.FromMilliseconds(50);
        private readonly EchoDaemon _owner;
        private readonly long _limit;
        private readonly List<SafeFileHandle> _reserve = new();
        private int? _ceiling;
        private Stopwatch? _since;
        private int _pauses;

        public AcceptBackoff(EchoDaemon owner, long descriptorLimit)
        {
            _owner = owner;
            _limit = descriptorLimit;
            try
            {
                for (int i = 0; i < Reserve; i++)
                {
                    _reserve.Add(File.OpenHandle("/dev/null"));
                }
            }
            catch (IOException)
            {
                // Already short at start: the first shortage sets the ceiling all the same.
            }
        }

        /// <summary>False while the connections open are at the ceiling (and some are open, to wait for).</summary>
        public bool MayAccept => _ceiling is not int ceiling || _owner._connections.Count < ceiling || _owner._connections.IsEmpty;

        public static bool IsShortage(Exception? e) =>
            e is SocketException { SocketErrorCode: SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable };

        /// <summary>An accept failed for want of descriptors or socket memory.</summary>
        public void RanOut(Exception? e)
        {
            if (e is not SocketException { SocketErrorCode: SocketError.TooManyOpenSockets })
            {
                return;
            }

            int open = _owner._connections.Count;
            if (_reserve.Count > 0)
            {
                // The reserve becomes the runtime's room; the connections open now are the ceiling.
                _reserve.ForEach(h => h.Dispose());
                _reserve.Clear();
                _ceiling = open;
            }
            else
            {
                // Something else took the room since: make it again, from connections that close.
                _ceiling = Math.Max(0, open - Reserve);
            }
        }

        public Task PauseAsync(CancellationToken cancellationToken)
        {
            if (_since is null)
            {
                _since = Stopwatch.StartNew();
                _pauses = 0;
                _owner.Log($"out of file descriptors or socket buffers: pausing accept, serving the {_owner._connections.Count} open connection(s)");
            }

            _pauses++;
            return Task.Delay(_pause, cancellationToken);
        }

        /// <summary>
        /// A connection was accepted on <paramref name="client"/>. Descriptors are numbered lowest
        /// free first, so its number tells how close the process is to its limit: within the
        /// reserve, the connections open now become the ceiling, before any accept fails and while
        /// the runtime still has room.
        /// </summary>
        public void Accepted(Socket client)
        {
            if (client.SafeHandle.DangerousGetHandle().ToInt64() >= _limit - Reserve)
            {
                _ceiling = Math.Min(_ceiling ?? int.MaxValue, _owner._connections.Count + 1);
            }

            if (_since is not null)
            {
                _owner.Log($"accepting again after {_since.ElapsedMilliseconds} ms ({_pauses} pauses)");
                _since = null;
            }
        }

        public void Dispose() => _reserve.ForEach(h => h.Dispose());

        /// <summary>The soft RLIMIT_NOFILE, from /proc/self/limits (read in the startup hook, before ready).</summary>
        public static long DescriptorLimit()
        {
            try
            {
                foreach (string line in File.ReadLines("/proc/self/limits"))
                {
                    if (line.StartsWith("Max open files", StringComparison.Ordinal)
                        && long.TryParse(line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], NumberStyles.None, CultureInfo.InvariantCulture, out long soft))
                    {
                        return soft;
                    }
                }
            }
            catch (IOException)
            {
            }

            // Unknown ("unlimited", or no /proc): only a failing accept will tell.
            return long.MaxValue;
        }
    }
}
