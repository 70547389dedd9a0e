namespace Daemon.PidFiles;

/// <summary>What a look at a pid file found.</summary>
internal enum PidFileKind
{
    /// <summary>No file at the path: not running.</summary>
    Missing,

    /// <summary>
    /// A file no process holds write-locked: whatever it names, the daemon is not running. A read
    /// lock (anyone who can read the file can take one) does not make a daemon.
    /// </summary>
    Stale,

    /// <summary>
    /// A file a live process holds write-locked as a daemon that is not ready yet (see
    /// <see cref="PidFileLocks"/>): a daemon in its startup. It names the daemon already, or is
    /// empty (the way older daemons said it).
    /// </summary>
    Starting,

    /// <summary>A file a live process holds write-locked and that names a pid: the daemon is running when it names the holder.</summary>
    Locked,

    /// <summary>Something at the path that cannot be read or is not a regular file.</summary>
    Unusable,
}
