using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Daemon.Example.Hosted;

/// <summary>
/// Writes a heartbeat line to the log at a configured interval. Its options are checked when it
/// starts, so a bad value makes <c>start</c> fail; <c>reload</c> applies new ones at the next beat.
/// </summary>
public sealed partial class HeartbeatService : BackgroundService
{
    private readonly IOptionsMonitor<HeartbeatOptions> _options;
    private readonly ILogger<HeartbeatService> _logger;
    private readonly IDisposable? _onChange;
    private long _beats;
    private (string Message, int Interval) _applied;

    /// <summary>Creates the service; the host provides its options and logger.</summary>
    /// <param name="options">The <c>Heartbeat</c> section, followed across reloads.</param>
    /// <param name="logger">Where the heartbeats go.</param>
    public HeartbeatService(IOptionsMonitor<HeartbeatOptions> options, ILogger<HeartbeatService> logger)
    {
        _options = options;
        _logger = logger;
        _applied = (options.CurrentValue.Message, options.CurrentValue.IntervalMilliseconds);
        _onChange = options.OnChange(OnOptionsChanged);
    }

    /// <summary>Checks the options, then starts beating in the background.</summary>
    /// <param name="cancellationToken">Cancelled when startup is aborted.</param>
    /// <returns>A task that completes when the service has started.</returns>
    /// <exception cref="InvalidOperationException">The interval is not above 0.</exception>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        HeartbeatOptions options = _options.CurrentValue;
        if (options.IntervalMilliseconds <= 0)
        {
            throw new InvalidOperationException($"Heartbeat:IntervalMilliseconds must be above 0, not {options.IntervalMilliseconds}");
        }

        Starting(_logger, options.IntervalMilliseconds);
        return base.StartAsync(cancellationToken);
    }

    /// <summary>Stops beating, then drains for up to <see cref="HeartbeatOptions.DrainMilliseconds"/>.</summary>
    /// <param name="cancellationToken">Cancelled when the host's shutdown time is up.</param>
    /// <returns>A task that completes when the service has stopped.</returns>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        int drain = _options.CurrentValue.DrainMilliseconds;
        if (drain > 0)
        {
            try
            {
                await Task.Delay(drain, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                DrainCutShort(_logger, drain);
                return;
            }
        }

        Stopped(_logger, Interlocked.Read(ref _beats));
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
        _onChange?.Dispose();
        base.Dispose();
    }

    /// <inheritdoc/>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            HeartbeatOptions options = _options.CurrentValue;
            Beat(_logger, Interlocked.Increment(ref _beats), options.Message);
            try
            {
                await Task.Delay(Math.Max(1, options.IntervalMilliseconds), stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private void OnOptionsChanged(HeartbeatOptions changed)
    {
        // A reload raises one change per configuration source: report the values once.
        (string, int) now = (changed.Message, changed.IntervalMilliseconds);
        if (now != _applied)
        {
            _applied = now;
            OptionsChanged(_logger, changed.Message, changed.IntervalMilliseconds);
        }
    }

    [LoggerMessage(1, LogLevel.Information, "heartbeat service starting, one beat every {Interval} ms")]
    private static partial void Starting(ILogger logger, int interval);

    [LoggerMessage(2, LogLevel.Information, "heartbeat {Beat}: {Message}")]
    private static partial void Beat(ILogger logger, long beat, string message);

    [LoggerMessage(3, LogLevel.Information, "heartbeat options changed: message '{Message}', every {Interval} ms")]
    private static partial void OptionsChanged(ILogger logger, string message, int interval);

    [LoggerMessage(4, LogLevel.Information, "heartbeat service stopped after {Beats} beats")]
    private static partial void Stopped(ILogger logger, long beats);

    [LoggerMessage(5, LogLevel.Warning, "heartbeat drain of {Drain} ms cut short by the shutdown timeout")]
    private static partial void DrainCutShort(ILogger logger, int drain);
}
