using System;
using System.Collections.Concurrent;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

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
    private int _nextConnection;
    private volatile string? _greeting;

    /// <summary>The TCP port (<c>--port</c>). Default: 8007.</summary>
    public int Port { get; set; } = 8007;

    /// <summary>A file whose first line greets each client (<c>--greeting-file</c>); re-read on reload.</summary>
    public string? GreetingFile { get; set; }

    /// <summary>
    /// A fault to act out, for drills and the reliability tests (<c>--simulate-fault</c>):
    /// <c>startup-throws</c>, <c>run-throws</c> or <c>ignore-stop</c>. Default: none.
    /// </summary>
    public string? SimulatedFault { get; set; }

    /// <inheritdoc/>
    protected override void ConfigureOptions(DaemonOptionSet options)
    {
        options.Add("--port", "N", "TCP port to listen on, on 127.0.0.1 (default: 8007)", v => Port = ParsePort(v));
        options.Add("--greeting-file", "PATH", "send this file's first line to each client; reread on reload", v => GreetingFile = Path.GetFullPath(v));
        options.Add("--simulate-fault", "KIND", "fault drill: startup-throws, run-throws or ignore-stop", v => SimulatedFault = v is "startup-throws" or "run-throws" or "ignore-stop" ? v : throw new FormatException("expected startup-throws, run-throws or ignore-stop"));
    }

    /// <inheritdoc/>
    protected override Task OnStartupAsync(CancellationToken cancellationToken)
    {
        if (SimulatedFault == "startup-throws")
        {
            throw new InvalidOperationException("simulated startup fault");
        }

        LoadGreeting();
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(IPAddress.Loopback, Port));
            listener.Listen(512);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new DaemonException($"cannot listen on 127.0.0.1:{Port}: {e.Message}", e);
        }

        _listener = listener;
        Log($"listening on 127.0.0.1:{Port}");
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
        using var closeConnections = new CancellationTokenSource();
        // Closed as soon as the loop ends: no new connection is queued while the open ones drain.
        using (listener)
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                // Awaited without throwing: a stop is the normal way out of this loop, not an error.
                // The token cancels the pending accept; the listener stays open until the loop ends,
                // so AcceptAsync never meets a socket disposed under it.
                Task<Socket> accepting = listener.AcceptAsync(stoppingToken).AsTask();
                await ((Task)accepting).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (!accepting.IsCompletedSuccessfully && stoppingToken.IsCancellationRequested)
                {
                    break;
                }

                Socket client = await accepting.ConfigureAwait(false);

                int id = Interlocked.Increment(ref _nextConnection);
                Task serving = ServeAsync(id, client, stoppingToken, closeConnections.Token);
                _connections[id] = serving;
                if (serving.IsCompleted)
                {
                    // It ended before it was added (its own removal came first): do not keep it.
                    _connections.TryRemove(id, out _);
                }
            }
        }

        // Drain: let clients get the echo of what they already sent, then close.
        if (_connections.IsEmpty)
        {
            Log("stopped accepting; no connections to drain");
            return;
        }

        TimeSpan grace = TimeSpan.FromTicks(Options.StopTimeout.Ticks / 2);
        Log($"stopped accepting; draining {_connections.Count} connection(s) for up to {grace.TotalSeconds:0.###} s");
        closeConnections.CancelAfter(grace);
        await Task.WhenAll(_connections.Values).ConfigureAwait(false);
        Log("all connections closed");
    }

    /// <inheritdoc/>
    protected override void OnReload()
    {
        LoadGreeting();
        Log(GreetingFile is null ? "reloaded (no greeting file)" : $"reloaded greeting from {GreetingFile}");
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

    private static int ParsePort(string value)
    {
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            throw new FormatException("expected a port from 1 to 65535");
        }

        return port;
    }
}
