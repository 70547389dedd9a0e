using Daemon;

new NoReturnDaemon().Main(args);              // no return: Main sets Environment.ExitCode as well

internal sealed class NoReturnDaemon : DaemonBase
{
    private bool _fail;

    protected override void ConfigureOptions(DaemonOptionSet options) =>
        options.AddFlag("--fail", "fail in the startup hook", () => _fail = true);

    protected override Task OnStartupAsync(CancellationToken cancellationToken) =>
        _fail ? throw new DaemonException("told to fail") : Task.CompletedTask;

    protected override async Task RunAsync(CancellationToken stoppingToken) =>
        await Task.Delay(Timeout.Infinite, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
}
