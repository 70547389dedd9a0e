using System;
using System.Collections.Generic;
using System.IO;
using Daemon.Files;
using Daemon.Interop;

namespace Daemon.Launching;

/// <summary>Starts another copy of this very program in a given stage.</summary>
internal static class SelfExec
{
    private const string StartVerb = "start";
    private const string RunVerb = "run";

    // Where this process's command line has the word the stages' argv says "start" in place of; -1: none.
    private static volatile int _startVerbAt = -1;

    /// <summary>
    /// Makes the stages this process starts read <c>start</c> where its own command line has the
    /// command word <paramref name="args"/>[<paramref name="index"/>] (<c>restart</c>): the next
    /// generation is a started daemon, and <c>ps</c> and <c>systemctl status</c> show it so. The
    /// handover is marked in the environment, not by the verb. <paramref name="args"/> is what
    /// reached <see cref="DaemonBase.Main"/>, the command line's tail; when that word is not where
    /// the command line has it (the program rewrote its arguments), the argv stays as it was.
    /// </summary>
    public static void StartVerbAt(string[] args, int index)
    {
        string[] commandLine = Environment.GetCommandLineArgs();
        int at = commandLine.Length - args.Length + index;
        _startVerbAt = index >= 0 && index < args.Length && at >= 1 && at < commandLine.Length && commandLine[at] == args[index] ? at : -1;
    }

    /// <summary>
    /// Starts this program again, with the command line it was started with, as stage
    /// <paramref name="kind"/>. The whole original command line, not what reached
    /// <see cref="DaemonBase.Main"/>: a program may strip its own leading words first. Only the
    /// command word of a <c>restart</c> reads <c>start</c> (see <see cref="StartVerbAt"/>).
    /// </summary>
    /// <param name="kind">The stage to start.</param>
    /// <param name="readyFd">The readiness pipe's write end, which the stage inherits.</param>
    /// <param name="takeOver">True for a restart's next generation.</param>
    /// <param name="supervisedWatchdogUsec">
    /// For a detach stage that starts a <see cref="StageKind.Supervised"/> daemon: the service's
    /// watchdog interval (WATCHDOG_USEC, which systemd gives its main process only), 0 for none.
    /// </param>
    /// <returns>The pid of the started copy.</returns>
    /// <exception cref="DaemonException">The program cannot be started.</exception>
    public static int Start(StageKind kind, int readyFd, bool takeOver = false, long? supervisedWatchdogUsec = null)
    {
        bool supervised = kind == StageKind.Supervised || supervisedWatchdogUsec is not null;
        string[] commandLine = Environment.GetCommandLineArgs();
        int at = _startVerbAt;
        if (at > 0 && at < commandLine.Length)
        {
            // Under systemd the next generation is what ExecStart= runs: "run".
            commandLine[at] = supervised ? RunVerb : StartVerb;
        }

        string program = Environment.ProcessPath ?? throw new DaemonException("cannot find this program's path");
        var argv = new List<string> { program };

        // Under "dotnet app.dll" the process is the dotnet host: the app is its first argument.
        if (Path.GetFileNameWithoutExtension(program) == "dotnet")
        {
            argv.Add(commandLine[0]);
        }

        argv.AddRange(commandLine.AsSpan(1));
        string[] arguments = [.. argv];
        string[] environment = StageEnvironment(kind, readyFd, takeOver, supervisedWatchdogUsec);

        // The detach stage as a native program when there is one: it starts argv[0], this program.
        // One that cannot be executed after all (another architecture, no x bit) changes nothing.
        if (kind == StageKind.Detach && !supervised && NativeStage.Find() is { } stage
            && Posix.Spawn(stage, arguments, environment, StageProtocol.ResetSignals, out int stagePid) == 0)
        {
            return stagePid;
        }

        int errno = Posix.Spawn(program, arguments, environment, StageProtocol.ResetSignals, out int pid);
        if (errno != 0)
        {
            throw DaemonException.FromErrno($"cannot start {PathText.Quote(program)}", errno);
        }

        return pid;
    }

    /// <summary>
    /// This process's environment (the marker already taken out of it) plus the next stage's marker,
    /// and the handover marker when the daemon is to take over from the running one.
    /// </summary>
    private static string[] StageEnvironment(StageKind kind, int readyFd, bool takeOver, long? supervisedWatchdogUsec)
    {
        var variables = new List<string>
        {
            $"{StageProtocol.KindVariable}={Stage.Name(kind, supervisedWatchdogUsec is not null)}",
            $"{StageProtocol.ReadyFdVariable}={Stage.FormatReadyFd(readyFd)}",
        };
        if (takeOver)
        {
            variables.Add($"{Handover.HandoverProtocol.Variable}=1");
        }

        // systemd gives WATCHDOG_USEC to the main process only: the next one gets the running one's.
        string[] replaced = supervisedWatchdogUsec is null
            ? [StageProtocol.KindVariable, StageProtocol.ReadyFdVariable, Handover.HandoverProtocol.Variable]
            : [StageProtocol.KindVariable, StageProtocol.ReadyFdVariable, Handover.HandoverProtocol.Variable, "WATCHDOG_USEC", "WATCHDOG_PID", "MAINPID"];
        if (supervisedWatchdogUsec > 0)
        {
            variables.Add($"WATCHDOG_USEC={supervisedWatchdogUsec.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        }

        foreach (System.Collections.DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            if (entry.Key is string key && Array.IndexOf(replaced, key) < 0)
            {
                variables.Add($"{key}={entry.Value}");
            }
        }

        return [.. variables];
    }
}
