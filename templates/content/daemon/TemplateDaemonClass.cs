using System.Globalization;
using Daemon;

namespace DaemonTemplate;

/// <summary>
/// The daemon: <see cref="OnStartupAsync"/> opens what it needs before it is declared ready,
/// <see cref="RunAsync"/> works until it is asked to stop, <see cref="OnReload"/> answers SIGHUP.
/// </summary>
public sealed class TemplateDaemonClass : DaemonBase
{
    private TimeSpan _interval = TimeSpan.FromSeconds(10);

    /// <inheritdoc/>
    protected override void ConfigureOptions(DaemonOptionSet options)
    {
        options.Add("--interval", "SECONDS", "time between two rounds of work", v => _interval = OptionValues.Seconds(v), () => _interval.TotalSeconds.ToString(CultureInfo.InvariantCulture));
    }

    /// <inheritdoc/>
    protected override Task OnStartupAsync(CancellationToken cancellationToken)
    {
        // Open listeners, files and connections here: if this throws, 'start' fails with the message.
        Log($"working every {_interval.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        long rounds = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            rounds++;
            Log($"round {rounds}");
            await Task.Delay(_interval, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        Log($"done after {rounds} rounds");
    }

    /// <inheritdoc/>
    protected override void OnReload()
    {
        // The log file was reopened already; re-read configuration here.
        Log("reloaded");
    }
}
