namespace Daemon.Example.Hosted;

/// <summary>The <c>Heartbeat</c> section of <c>appsettings.json</c>; <c>reload</c> re-reads it.</summary>
public sealed class HeartbeatOptions
{
    /// <summary>The configuration section these options come from.</summary>
    public const string Section = "Heartbeat";

    /// <summary>The text of each heartbeat line. Default: <c>alive</c>.</summary>
    public string Message { get; set; } = "alive";

    /// <summary>The time between two heartbeats, in milliseconds; above 0. Default: 1000.</summary>
    public int IntervalMilliseconds { get; set; } = 1000;

    /// <summary>
    /// How long the service goes on after it is asked to stop, a stand-in for finishing work in
    /// flight; the host's shutdown timeout cuts it short. Default: 0.
    /// </summary>
    public int DrainMilliseconds { get; set; }
}
