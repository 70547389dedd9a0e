namespace Daemon.PidFiles;

/// <summary>Looks at pid files from outside the daemon: the seam the commands decide through.</summary>
internal interface IPidFileStore
{
    /// <summary>Reads the file at <paramref name="path"/> and asks the kernel who holds its write lock.</summary>
    PidFileState Inspect(string path);

    /// <summary>
    /// Removes the file when nobody holds it locked and it is ours. True when no stale file is left
    /// (removed, missing, or held by a lock); otherwise <paramref name="problem"/> says why.
    /// </summary>
    bool TryRemoveStale(string path, out string? problem);

    /// <summary>
    /// As <see cref="TryRemoveStale"/>, for a file another tool wrote, once the process it named
    /// exited: removed only while nobody holds it locked and it still names <paramref name="pid"/>
    /// (a supervisor may have started the program again and written the new pid meanwhile).
    /// </summary>
    bool TryRemoveNaming(string path, int pid, out string? problem);
}
