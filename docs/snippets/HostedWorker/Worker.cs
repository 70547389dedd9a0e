using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

/// <summary>The BackgroundService of the README's snippet: a stand-in for the reader's own.</summary>
internal sealed partial class Worker(ILogger<Worker> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            Working(logger);
            await Task.Delay(TimeSpan.FromSeconds(5), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    [LoggerMessage(1, LogLevel.Information, "working")]
    private static partial void Working(ILogger logger);
}
