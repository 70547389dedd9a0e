namespace Daemon.Commands;

/// <summary>The commands a daemon program answers.</summary>
internal enum Command
{
    Help,
    Start,
    Stop,
    Restart,
    Status,
    Reload,
    Run,

    /// <summary><c>--version</c>: the program's name and version.</summary>
    Version,
}
