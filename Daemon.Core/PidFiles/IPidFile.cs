namespace Daemon.PidFiles;

/// <summary>The daemon's own pid file, held locked for its whole life.</summary>
internal interface IPidFile
{
    /// <summary>The path of the file.</summary>
    string Path { get; }

    /// <summary>True while the path names this file (a next generation may have taken it over).</summary>
    bool IsAtItsPath { get; }

    /// <summary>Writes the pid: from now on, the file says the daemon is ready.</summary>
    void Publish(int pid);

    /// <summary>Removes the file if the path still names it, and lets the lock go.</summary>
    void Remove();
}
