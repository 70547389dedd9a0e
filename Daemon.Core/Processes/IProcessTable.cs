namespace Daemon.Processes;

/// <summary>Finds live processes by pid: the seam through which the commands signal and wait.</summary>
internal interface IProcessTable
{
    /// <summary>A handle on the live process <paramref name="pid"/>, or null when there is none.</summary>
    IProcessHandle? Open(int pid);
}
