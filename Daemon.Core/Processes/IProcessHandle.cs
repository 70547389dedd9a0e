using System;

namespace Daemon.Processes;

/// <summary>One process, held so that pid reuse cannot redirect a signal to a stranger.</summary>
internal interface IProcessHandle : IDisposable
{
    /// <summary>The process id.</summary>
    int Pid { get; }

    /// <summary>Sends <paramref name="signal"/>; false when the process has already exited.</summary>
    /// <exception cref="DaemonException">The signal is not permitted.</exception>
    bool Signal(int signal);

    /// <summary>Blocks until the process exits (a zombie has exited); false after <paramref name="timeout"/>.</summary>
    bool WaitForExit(TimeSpan timeout);
}
