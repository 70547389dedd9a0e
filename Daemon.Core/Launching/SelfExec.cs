using System;
using System.Collections.Generic;
using System.IO;
using Daemon.Files;
using Daemon.Interop;

namespace Daemon.Launching;

/// <summary>Starts another copy of this very program in a given stage.</summary>
internal static class SelfExec
{
    /// <summary>
    /// Starts this program again, with the command line it was started with, as stage
    /// <paramref name="kind"/>. The whole original command line, not what reached
    /// <see cref="DaemonBase.Main"/>: a program may strip its own leading words first.
    /// </summary>
    /// <returns>The pid of the started copy.</returns>
    /// <exception cref="DaemonException">The program cannot be started.</exception>
    public static int Start(StageKind kind, int readyFd, bool takeOver = false)
    {
        string[] commandLine = Environment.GetCommandLineArgs();
        string program = Environment.ProcessPath ?? throw new DaemonException("cannot find this program's path");
        var argv = new List<string> { program };

        // Under "dotnet app.dll" the process is the dotnet host: the app is its first argument.
        if (Path.GetFileNameWithoutExtension(program) == "dotnet")
        {
            argv.Add(commandLine[0]);
        }

        argv.AddRange(commandLine.AsSpan(1));
        string[] arguments = [.. argv];
        string[] environment = StageEnvironment(kind, readyFd, takeOver);

        // The detach stage as a native program when there is one: it starts argv[0], this program.
        // One that cannot be executed after all (another architecture, no x bit) changes nothing.
        if (kind == StageKind.Detach && NativeStage.Find() is { } stage
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
    private static string[] StageEnvironment(StageKind kind, int readyFd, bool takeOver)
    {
        var variables = new List<string>
        {
            $"{StageProtocol.KindVariable}={Stage.Name(kind)}",
            $"{StageProtocol.ReadyFdVariable}={Stage.FormatReadyFd(readyFd)}",
        };
        if (takeOver)
        {
            variables.Add($"{Handover.HandoverProtocol.Variable}=1");
        }

        foreach (System.Collections.DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            if (entry.Key is string key && key != StageProtocol.KindVariable && key != StageProtocol.ReadyFdVariable && key != Handover.HandoverProtocol.Variable)
            {
                variables.Add($"{key}={entry.Value}");
            }
        }

        return [.. variables];
    }
}
