using System.Collections.Generic;
using Daemon.Interop;

namespace Daemon.Launching;

/// <summary>
/// The middle copy of the program: the second "fork" of the classic double fork. It leaves the
/// launcher's session, starts the daemon and exits, so the daemon is orphaned to init, is not a
/// session leader and can never acquire a controlling terminal.
/// </summary>
internal static class DetachStage
{
    public static int Run(Stage stage, IReadOnlyCollection<int> keepDescriptors)
    {
        using var ready = new ReadinessWriter(stage.ReadyFd);
        try
        {
            if (!stage.Supervised)
            {
                // Under systemd the service's session and streams (the journal) are the daemon's.
                CreateSession();
                Descriptors.StandardStreamsToNull();
            }

            Descriptors.CloseOnExecAllBut(new List<int>(keepDescriptors) { stage.ReadyFd });

            // Spawned with no signal blocked and the stop signals at their defaults. Its pid goes to
            // the launcher at once, so a launcher that gives up can name what to kill.
            int daemon = SelfExec.Start(stage.Supervised ? StageKind.Supervised : StageKind.Daemon, stage.ReadyFd, stage.TakeOver);
            _ = ready.Send(StageProtocol.Pid, ReadinessMessage.Format(daemon));
            return ExitCodes.Success;
        }
        catch (DaemonException e)
        {
            _ = ready.Send(StageProtocol.Error, e.Message);
            return StageProtocol.StageFailed;
        }
    }

    private static void CreateSession()
    {
        if (Posix.CreateSession(out int errno) < 0)
        {
            throw DaemonException.FromErrno("cannot create a new session (setsid)", errno);
        }
    }
}
