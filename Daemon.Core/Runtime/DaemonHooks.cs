using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;

namespace Daemon.Runtime;

/// <summary>
/// What the runtime needs of the daemon it runs: its name, its hooks and the caller's error
/// stream, handed over once by <see cref="DaemonBase"/> so the runtime never reaches into it.
/// </summary>
/// <param name="Name">The daemon's name, in its log lines and messages.</param>
/// <param name="MainLoopMissing">Null when the daemon overrides Run or RunAsync, else why it cannot run.</param>
/// <param name="StartupAsync">The startup hook (<c>OnStartupAsync</c>).</param>
/// <param name="ActivateAsync">The activation hook (<c>OnActivateAsync</c>), once no other generation runs.</param>
/// <param name="OverlapOnRestart">True when the main loop may begin while the previous generation's ends (<c>OverlapOnRestart</c>).</param>
/// <param name="Run">The main loop (<c>Run</c>).</param>
/// <param name="Reload">The reload hook (<c>OnReload</c>).</param>
/// <param name="IsHealthy">The health check the watchdog asks (<c>IsHealthy</c>).</param>
/// <param name="Logged">Sees every log line (<c>OnLogged</c>).</param>
/// <param name="KeepCallerStreams">Keeps <paramref name="CommandError"/> reaching the caller after 1 and 2 go to the log.</param>
/// <param name="CommandError">The error stream of the command that started the daemon.</param>
internal sealed record DaemonHooks(
    string Name,
    string? MainLoopMissing,
    Func<CancellationToken, Task> StartupAsync,
    Func<CancellationToken, Task> ActivateAsync,
    bool OverlapOnRestart,
    Action<CancellationToken> Run,
    Action Reload,
    Func<bool> IsHealthy,
    Action<LogSeverity, string> Logged,
    Action KeepCallerStreams,
    TextWriter CommandError);
