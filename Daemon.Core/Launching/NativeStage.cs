using System;
using System.IO;
using Daemon.Interop;

namespace Daemon.Launching;

/// <summary>
/// daemon-net-stage, the detach stage as a small native executable (<c>build/native/detach_stage.c</c>):
/// a JIT program starts it instead of a second copy of itself, which saves one .NET runtime start
/// (about a third) of every <c>start</c>. A Native AOT program has the same code linked in: its
/// publish leaves this file out (build/Daemon.Core.targets), and its launcher starts itself.
/// </summary>
internal static class NativeStage
{
    /// <summary>Its file name, beside the program or in one of its native library folders.</summary>
    public const string FileName = "daemon-net-stage";

    /// <summary>
    /// The stage's path when this program has it, executable, beside it or in the native library
    /// folders its host names (a package's runtimes/RID/native); otherwise null, and the program
    /// starts itself as the detach stage. A launcher asks once.
    /// </summary>
    public static string? Find()
    {
        // <DaemonNetNativeDetachStage>false</DaemonNetNativeDetachStage> in the project sets it.
        if (!OperatingSystem.IsLinux() || (AppContext.TryGetSwitch("Daemon.NativeDetachStage", out bool enabled) && !enabled))
        {
            return null;
        }

        foreach (string folder in NativeFolders.OfThisProgram())
        {
            string candidate = Path.Combine(folder, FileName);
            if (File.Exists(candidate) && Posix.IsExecutable(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
