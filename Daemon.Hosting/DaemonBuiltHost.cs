namespace Daemon.Hosting;

/// <summary>A service the daemon adds as it builds a host: its presence proves the daemon configured that host.</summary>
internal sealed class DaemonBuiltHost
{
}
