namespace Daemon.Launching;

/// <summary>Which copy of the program this process is.</summary>
internal enum StageKind
{
    /// <summary>Started by a person or a service manager: a command to carry out.</summary>
    Command,

    /// <summary>The middle copy: calls setsid(), starts the daemon, exits.</summary>
    Detach,

    /// <summary>The final copy: the daemon itself.</summary>
    Daemon,
}
