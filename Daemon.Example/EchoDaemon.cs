using System;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Daemon.Example;

/// <summary>
/// A TCP echo server on 127.0.0.1, daemonized by Daemon.NET. It binds in the startup hook (so a
/// taken port fails <c>start</c>) and serves many clients at once through
/// <see cref="DaemonBase.ServeAsync"/>, which also drains them at stop or after a handover.
/// </summary>
public sealed class EchoDaemon : DaemonBase
{
    private Socket? _listener;
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

    /// <summary>
    /// How long the startup hook waits before it listens (<c>--startup-delay</c>), a drill for slow
    /// startups: <c>--ready-timeout</c>, and under systemd the EXTEND_TIMEOUT_USEC that keeps a
    /// unit's TimeoutStartSec= from killing it. A stop request ends the wait. Default: none.
    /// </summary>
    public TimeSpan StartupDelay { get; set; }

    /// <inheritdoc/>
    protected override void ConfigureOptions(DaemonOptionSet options)
    {
        options.Add("--port", "N", "TCP port to listen on, on 127.0.0.1", v => Port = OptionValues.Port(v), () => Port.ToString(CultureInfo.InvariantCulture));
        options.Add("--greeting-file", "PATH", "send this file's first line to each client; reread on reload", v => GreetingFile = OptionValues.FullPath(v), () => GreetingFile);
        options.Add("--startup-delay", "SECONDS", "fault drill: a startup that takes this long before listening", v => StartupDelay = OptionValues.Seconds(v));
        options.Add("--simulate-fault", "KIND", "fault drill: startup-throws, run-throws, ignore-stop or unhealthy", v => SimulatedFault = v is "startup-throws" or "run-throws" or "ignore-stop" or "unhealthy" ? v : throw new FormatException("expected startup-throws, run-throws, ignore-stop or unhealthy"));
    }

    /// <inheritdoc/>
    protected override async Task OnStartupAsync(CancellationToken cancellationToken)
    {
        if (SimulatedFault == "startup-throws")
        {
            throw new InvalidOperationException("simulated startup fault");
        }

        if (StartupDelay > TimeSpan.Zero)
        {
            Log($"startup delay: {StartupDelay.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
            await Task.Delay(StartupDelay, cancellationToken).ConfigureAwait(false);
        }

        LoadGreeting();
        // On a zero-downtime restart this is the running daemon's own socket: nothing is refused.
        _listener = Listen("echo", new IPEndPoint(IPAddress.Loopback, Port));
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

        // The library accepts, backs off when descriptors run out, and drains at stop or after a handover.
        await ServeAsync(_listener!, EchoAsync, stoppingToken).ConfigureAwait(false);
    }

    /// <summary>
    /// True: each connection stands alone, so on a restart the next generation serves the queue at
    /// once while this one finishes its open connections.
    /// </summary>
    protected override bool OverlapOnRestart => true;

    /// <inheritdoc/>
    protected override bool IsHealthy() => SimulatedFault != "unhealthy" || Interlocked.Increment(ref _healthChecks) <= 3;

    /// <inheritdoc/>
    protected override void OnReload()
    {
        LoadGreeting();
        Log(GreetingFile is null ? "reloaded (no greeting file)" : $"reloaded greeting from {GreetingFile}");
    }

    /// <summary>Greets, then sends back what the client sends until its input ends (its close, or the daemon's stop).</summary>
    private async Task EchoAsync(Socket client, CancellationToken closeNow)
    {
        int id = Interlocked.Increment(ref _nextConnection);
        string peer = client.RemoteEndPoint?.ToString() ?? "?";
        Log($"connection {id} from {peer}");
        try
        {
            if (_greeting is { } greeting)
            {
                await client.SendAsync(Encoding.UTF8.GetBytes(greeting + "\n"), SocketFlags.None, closeNow).ConfigureAwait(false);
            }

            byte[] buffer = new byte[16 * 1024];
            int n;
            while ((n = await client.ReceiveAsync(buffer, SocketFlags.None, closeNow).ConfigureAwait(false)) > 0)
            {
                await client.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, closeNow).ConfigureAwait(false);
            }

            client.Shutdown(SocketShutdown.Both);
        }
        finally
        {
            Log($"connection {id} from {peer} closed");
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
}
