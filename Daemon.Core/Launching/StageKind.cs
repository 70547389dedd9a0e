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

    /// <summary>
    /// A restart's next generation of a daemon that systemd supervises (<c>run</c>), started by
    /// the unit's <c>ExecReload=</c> through a detach stage that keeps the session and the standard
    /// streams: in the service's cgroup, logging where the service does, orphaned to systemd before
    /// it takes the service's main process over (systemd then sees it as its own child).
    /// </summary>
    Supervised,
}
