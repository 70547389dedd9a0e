using System;
using System.Globalization;
using System.IO;
using Daemon.Launching;
using Daemon.PidFiles;
using Daemon.Processes;
using Daemon.Security;

namespace Daemon;

/// <summary>The commands that act on a daemon from outside: start, stop, status, reload.</summary>
public abstract partial class DaemonBase
{
    private const int SigHup = 1;
    private const int SigKill = 9;
    private const int SigTerm = 15;
    private static readonly TimeSpan _killGrace = TimeSpan.FromSeconds(5);

    private int StartCore()
    {
        string pidFile = PidFilePath;
        PidFileState state = _system.PidFiles.Inspect(pidFile);
        switch (state.Kind)
        {
            case PidFileKind.Locked:
                return Say($"already running (pid {state.Holder})");
            case PidFileKind.Unusable:
                return Fail(state.Problem!);
        }

        // Fail here, in the terminal, before anything is started.
        _ = Identity.Resolve(Options.User, Options.Group);
        CreateDefaultFolder();

        var request = new LaunchRequest(pidFile, LogFilePath, Options.ReadyTimeout, [.. Options.KeepDescriptors]);
        LaunchResult result = _system.Launcher.Launch(request);
        return result.Outcome switch
        {
            LaunchOutcome.Ready => Say($"started (pid {result.Pid})"),
            LaunchOutcome.AlreadyRunning => Say($"already running (pid {result.Pid})"),
            _ => Fail(result.Error ?? "the daemon failed to start"),
        };
    }

    private int StopCore()
    {
        string pidFile = PidFilePath;
        PidFileState state = _system.PidFiles.Inspect(pidFile);
        switch (state.Kind)
        {
            case PidFileKind.Missing:
                return Say("not running");
            case PidFileKind.Unusable:
                return Fail(state.Problem!);
            case PidFileKind.Stale:
                RemoveStalePidFile(pidFile);
                return Say("not running");
        }

        if (!state.NamesItsHolder)
        {
            return Fail(Mismatch(pidFile, state));
        }

        using IProcessHandle? daemon = OpenHolder(pidFile, state.Holder, out string? refusal);
        if (refusal is not null)
        {
            return Fail(refusal);
        }

        if (daemon is not null && daemon.Signal(SigTerm) && !daemon.WaitForExit(Options.StopTimeout))
        {
            string seconds = Options.StopTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture);
            if (!Options.Force)
            {
                return Fail($"pid {daemon.Pid} did not stop within {seconds} s (stop --force sends SIGKILL)");
            }

            if (daemon.Signal(SigKill) && !daemon.WaitForExit(_killGrace))
            {
                return Fail($"pid {daemon.Pid} did not exit even after SIGKILL");
            }

            RemoveStalePidFile(pidFile);
            return Say($"killed (pid {state.Holder}) after {seconds} s");
        }

        // A daemon killed with SIGKILL, or one that could not unlink after dropping root, leaves
        // its file behind: unlocked now, it is stale, and ours to remove.
        RemoveStalePidFile(pidFile);
        return Say($"stopped (pid {state.Holder})");
    }

    private int StatusCore()
    {
        string pidFile = PidFilePath;
        PidFileState state = _system.PidFiles.Inspect(pidFile);
        switch (state.Kind)
        {
            case PidFileKind.Missing:
                _system.Output.WriteLine("not running");
                return ExitCodes.NotRunning;
            case PidFileKind.Unusable:
                _system.Error.WriteLine($"{Name}: {state.Problem}");
                return ExitCodes.Unknown;
            case PidFileKind.Stale:
                _system.Output.WriteLine($"not running, but pid file {pidFile} is left (it names {state.Content})");
                return ExitCodes.Failure;
        }

        if (!state.NamesItsHolder)
        {
            _system.Error.WriteLine($"{Name}: {Mismatch(pidFile, state)}");
        }

        _system.Output.WriteLine($"running (pid {state.Holder})");
        return ExitCodes.Success;
    }

    private int ReloadCore()
    {
        string pidFile = PidFilePath;
        PidFileState state = _system.PidFiles.Inspect(pidFile);
        switch (state.Kind)
        {
            case PidFileKind.Missing:
            case PidFileKind.Stale:
                _system.Error.WriteLine($"{Name}: not running");
                return ExitCodes.ReloadNotRunning;
            case PidFileKind.Unusable:
                return Fail(state.Problem!);
        }

        if (!state.NamesItsHolder)
        {
            return Fail(Mismatch(pidFile, state));
        }

        using IProcessHandle? daemon = OpenHolder(pidFile, state.Holder, out string? refusal);
        if (refusal is not null)
        {
            return Fail(refusal);
        }

        if (daemon is null || !daemon.Signal(SigHup))
        {
            _system.Error.WriteLine($"{Name}: not running");
            return ExitCodes.ReloadNotRunning;
        }

        return Say($"reloading (pid {daemon.Pid})");
    }

    /// <summary>
    /// Opens the lock holder and checks, with the handle held, that it still holds the lock: from
    /// then on the handle names that process even if its pid is reused. Null when it has exited.
    /// </summary>
    private IProcessHandle? OpenHolder(string pidFile, int holder, out string? refusal)
    {
        refusal = null;
        IProcessHandle? process = _system.Processes.Open(holder);
        if (process is null)
        {
            return null;
        }

        PidFileState again = _system.PidFiles.Inspect(pidFile);
        if (again.Kind == PidFileKind.Locked && again.Holder != holder)
        {
            refusal = $"pid file {pidFile} changed hands (pid {holder}, now {again.Holder}); not signalling";
        }
        else if (again.Kind != PidFileKind.Locked)
        {
            // It exited between the two looks: nothing to signal.
            process.Dispose();
            return null;
        }
        else
        {
            return process;
        }

        process.Dispose();
        return null;
    }

    private void RemoveStalePidFile(string pidFile)
    {
        if (!_system.PidFiles.TryRemoveStale(pidFile, out string? problem))
        {
            _system.Error.WriteLine($"{Name}: {problem}");
        }
    }

    private static string Mismatch(string pidFile, PidFileState state) =>
        $"pid file {pidFile} names {state.Content} but pid {state.Holder} holds its lock; not signalling anything";

    private void CreateDefaultFolder()
    {
        // Only the per-user default folder is created; a folder named on the command line must exist.
        if (OperatingSystem.IsLinux()
            && _paths.OwnFolder is { } folder
            && (Options.PidFile is null || Options.LogFile is null)
            && !Directory.Exists(folder))
        {
            try
            {
                Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new DaemonException($"cannot create folder {folder}: {e.Message}", e);
            }
        }
    }

    private int Guarded(string command, Func<int> body, int failure = ExitCodes.Failure)
    {
        if (!OperatingSystem.IsLinux())
        {
            _system.Error.WriteLine($"{Name}: '{command}' needs Linux; on this system use 'run'");
            return failure;
        }

        try
        {
            return body();
        }
        catch (DaemonException e)
        {
            _system.Error.WriteLine($"{Name}: {e.Message}");
            return failure;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            _system.Error.WriteLine($"{Name}: {command} failed: {e.Message}");
            return failure;
        }
    }

    private int Say(string message)
    {
        _system.Output.WriteLine(message);
        return ExitCodes.Success;
    }

    private int Fail(string message)
    {
        _system.Error.WriteLine($"{Name}: {message}");
        return ExitCodes.Failure;
    }
}
