using System;
using Daemon.PidFiles;

namespace Daemon.Handover;

/// <summary>
/// What a generation asks of the operating system during a zero-downtime restart: the part of the
/// daemon's seam (<c>IDaemonSteps</c>) that <see cref="Generation"/> uses, so a unit test sees the
/// handover's steps in their order among the others.
/// </summary>
internal interface IHandoverSteps
{
    /// <summary>
    /// Connects to the daemon that holds <paramref name="path"/> and takes its listeners into
    /// <paramref name="into"/>. Its daemon may run as root, as this process's user, or as
    /// <paramref name="runsAs"/>, the user this daemon will run as (<c>--user</c>): the one a
    /// root-started daemon dropped to. Every wait ends within <paramref name="timeout"/>.
    /// </summary>
    /// <exception cref="DaemonException">None runs any more, or it does not hand over in time.</exception>
    IPredecessor ConnectToPredecessor(string path, ListenerSet into, uint? runsAs, TimeSpan timeout);

    /// <summary>Takes the pid file over from the running daemon: a new file holding <paramref name="pid"/>, renamed over the path.</summary>
    IPidFile TakeOverPidFile(string path, int pid);
}
