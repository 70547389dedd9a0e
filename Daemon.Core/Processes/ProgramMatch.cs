namespace Daemon.Processes;

/// <summary>Whether a process runs this same program file.</summary>
internal enum ProgramMatch
{
    /// <summary>It runs this program file (or the one it replaced at the same path: an upgrade).</summary>
    Same,

    /// <summary>It runs another program, or it is this very command.</summary>
    Other,

    /// <summary>Its program cannot be read: another user's process, seen by a user who is not root.</summary>
    Unknown,

    /// <summary>It exited, before or while it was looked at.</summary>
    Exited,
}
