using System.Globalization;
using Daemon;

return new TickDaemon().Main(args);           // Program.cs: the whole of it

internal sealed class TickDaemon : DaemonBase
{
    private TimeSpan _every = TimeSpan.FromSeconds(5);

    // OptionValues.Seconds refuses 0, negative numbers and words: a usage error (exit 2), before anything starts.
    protected override void ConfigureOptions(DaemonOptionSet options) =>
        options.Add("--every", "SECONDS", "tick interval", v => _every = OptionValues.Seconds(v), () => _every.TotalSeconds.ToString(CultureInfo.InvariantCulture));

    // Runs inside the daemon before it is declared ready: if it throws, `start` fails with the message.
    protected override Task OnStartupAsync(CancellationToken cancellationToken)
    {
        Log($"ticking every {_every.TotalSeconds} s");
        return Task.CompletedTask;
    }

    // The main loop: the token is cancelled on SIGTERM, SIGINT or SIGQUIT.
    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            Console.WriteLine($"tick {DateTime.Now:T}");      // stdout goes to the log file
            await Task.Delay(_every, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    protected override void OnReload() => Log("reload: re-read configuration here");   // SIGHUP
}
