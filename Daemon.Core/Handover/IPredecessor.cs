using System;

namespace Daemon.Handover;

/// <summary>The running daemon a next generation takes over from, seen from the next generation.</summary>
internal interface IPredecessor : IDisposable
{
    /// <summary>The running daemon's pid.</summary>
    int Pid { get; }

    /// <summary>
    /// Tells it that this generation holds the pid file and which of its listeners it
    /// <paramref name="adopted"/>: it stops accepting on those and drains. True when it agreed;
    /// false when it exited in the meantime (killed): this generation is the service either way.
    /// </summary>
    /// <param name="pid">This generation's pid.</param>
    /// <param name="adopted">The names of the listeners this generation took.</param>
    /// <param name="awaitRelease">
    /// True to wait, after the confirmation, until it says it acted on it: under systemd, that it
    /// made this process the service's main process (it alone may say so with NotifyAccess=main).
    /// </param>
    /// <exception cref="DaemonException">It did not agree (it is stopping), or did not answer in time.</exception>
    bool Commit(int pid, System.Collections.Generic.IReadOnlyCollection<string> adopted, bool awaitRelease = false);

    /// <summary>Blocks until it has exited (a zombie has); false after <paramref name="timeout"/>.</summary>
    bool WaitForExit(TimeSpan timeout);

    /// <summary>Sends it SIGKILL, through the handle held since connect (never a stranger that got its pid).</summary>
    void Kill();
}
