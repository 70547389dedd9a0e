using System.Globalization;
using System.Net.Sockets;
using Daemon;

namespace DaemonTemplate;

/// <summary>
/// The daemon: <see cref="OnStartupAsync"/> opens what it needs before it is declared ready,
/// <see cref="RunAsync"/> works until it is asked to stop, <see cref="OnReload"/> answers SIGHUP.
/// </summary>
public sealed class TemplateDaemonClass : DaemonBase
{
    private TimeSpan _interval = TimeSpan.FromSeconds(10);
    private string? _statusSocket;
    private Socket? _listener;
    private long _rounds;

    /// <inheritdoc/>
    protected override void ConfigureOptions(DaemonOptionSet options)
    {
        options.Add("--interval", "SECONDS", "time between two rounds of work", v => _interval = OptionValues.Seconds(v), () => _interval.TotalSeconds.ToString(CultureInfo.InvariantCulture));
        options.Add("--status-socket", "PATH", "a Unix socket that answers each connection with the rounds done", v => _statusSocket = OptionValues.FullPath(v), () => _statusSocket);
    }

    /// <inheritdoc/>
    protected override Task OnStartupAsync(CancellationToken cancellationToken)
    {
        // Open listeners, files and connections here: if this throws, 'start' fails with the message.
        // A socket from Listen is handed to the next generation on 'restart': no connection is refused.
        // On 'restart' this runs while the running generation still works (a failure here leaves it
        // running); RunAsync begins once that one has exited, so two never work at once.
        if (_statusSocket is not null)
        {
            _listener = Listen("status", new UnixDomainSocketEndPoint(_statusSocket));
        }

        Log($"working every {_interval.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        // The library accepts, paces itself when descriptors run short, and drains at stop (or,
        // after a handover, leaves new connections to the next generation).
        Task serving = _listener is null ? Task.CompletedTask : ServeAsync(_listener, AnswerAsync, stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            long rounds = Interlocked.Increment(ref _rounds);
            Log($"round {rounds}");
            await Task.Delay(_interval, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await serving.ConfigureAwait(false);
        Log($"done after {Interlocked.Read(ref _rounds)} rounds");
    }

    /// <inheritdoc/>
    protected override void OnReload()
    {
        // The log file was reopened already; re-read configuration here.
        Log("reloaded");
    }

    /// <summary>Answers one connection to the status socket with one line; the library closes it then.</summary>
    private async Task AnswerAsync(Socket client, CancellationToken closeNow)
    {
        byte[] line = System.Text.Encoding.UTF8.GetBytes($"{Interlocked.Read(ref _rounds)} rounds (pid {Environment.ProcessId})\n");
        await client.SendAsync(line, SocketFlags.None, closeNow).ConfigureAwait(false);
    }
}
