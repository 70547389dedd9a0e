using System;

namespace Daemon.Handover;

/// <summary>The running daemon a next generation takes over from, seen from the next generation.</summary>
internal interface IPredecessor : IDisposable
{
    /// <summary>The running daemon's pid.</summary>
    int Pid { get; }

    /// <summary>Tells it that this generation holds the pid file: it stops accepting and drains.</summary>
    /// <exception cref="DaemonException">It did not agree (it was being stopped, or went away).</exception>
    void Commit(int pid);
}
