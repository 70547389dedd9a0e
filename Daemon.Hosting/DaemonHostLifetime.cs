using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Hosting;

namespace Daemon.Hosting;

/// <summary>
/// The host's lifetime under Daemon.NET: it does nothing, because the daemon owns the signals.
/// </summary>
/// <remarks>
/// It takes the place of ConsoleLifetime, which registers its own SIGINT, SIGQUIT and SIGTERM
/// handlers that call <see cref="IHostApplicationLifetime.StopApplication"/> and prints "Press
/// Ctrl+C to shut down", and of SystemdLifetime, which would send a second READY=1. With either,
/// a SIGTERM would stop the host behind the daemon's back, outside its stop timeout.
/// </remarks>
internal sealed class DaemonHostLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
