using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Mono.Unix.Native;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// daemon-net-stage, the detach stage as a native executable that a JIT program starts instead of
/// a second copy of itself: built from the source beside the library, used when it is there, and
/// never in the way when it is not usable. Which processes a <c>start</c> executed is read from
/// <c>strace -f -e trace=execve</c>, which follows the launcher, the stage and the daemon.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class NativeStageTests : DaemonFixture
{
    private const string Strace = "/usr/bin/strace";

    protected override string FolderLabel => "stage";

    private static string StageBesideTheExample => Path.Combine(Path.GetDirectoryName(ExampleDaemon.Program)!, TestEnvironment.NativeStage);

    [Test]
    public void TheStageBesideTheProgram_WasBuiltFromTheSourceBesideTheLibrary_ForThisMachine()
    {
        Assert.That(File.Exists(StageBesideTheExample), Is.True, $"{StageBesideTheExample}: the build puts this machine's stage beside the program (a C compiler is needed)");
        byte[] stage = File.ReadAllBytes(StageBesideTheExample);
        Assert.That(Encoding.ASCII.GetString(stage), Does.Contain(SourceId), "built from detach_stage.c as it is now");
        Assert.That(Elf.Machine(stage), Is.EqualTo(Elf.MachineOf(RuntimeInformation.OSArchitecture)), "for this machine's architecture");
        Assert.That(Elf.IsStaticPie(stage), Is.True, "static (any C library) and position-independent (ASLR)");
    }

    [Test]
    public void Start_RunsTheNativeStage_InsteadOfASecondDotnetProcess()
    {
        string program = TestEnvironment.CopyProgram(ExampleDaemon.Program, _daemon.Folder);
        List<Exec> execs = TracedStartAndStop(program);

        Assert.That(execs.Where(e => e.Ok && e.Path == program).Count(), Is.EqualTo(2), "the launcher and the daemon: " + string.Join("; ", execs));
        Exec stage = execs.Single(e => e.Path.EndsWith("/" + TestEnvironment.NativeStage, StringComparison.Ordinal));
        Assert.That(stage.Ok, Is.True, stage.ToString());
        Assert.That(stage.Argv0, Is.EqualTo(program), "the stage starts argv[0], the program itself");
        Assert.That(_daemon.Log, Does.Contain("ready"));
    }

    [TestCase("missing")]
    [TestCase("not executable")]
    [TestCase("not a program")]
    [TestCase("switched off")]
    public void WithoutAUsableNativeStage_StartRunsTheManagedStage(string how)
    {
        string program = TestEnvironment.CopyProgram(ExampleDaemon.Program, _daemon.Folder);
        string stage = Path.Combine(Path.GetDirectoryName(program)!, TestEnvironment.NativeStage);
        switch (how)
        {
            case "missing":
                File.Delete(stage);
                break;
            case "not executable":
                Assert.That(Syscall.chmod(stage, FilePermissions.DEFFILEMODE & ~(FilePermissions.S_IWGRP | FilePermissions.S_IWOTH)), Is.EqualTo(0));
                break;
            case "not a program":
                File.WriteAllBytes(stage, new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 });
                break;
            default:
                // <DaemonNetNativeDetachStage>false</DaemonNetNativeDetachStage> puts this switch in the runtimeconfig.
                string config = program + ".runtimeconfig.json";
                JsonNode json = JsonNode.Parse(File.ReadAllText(config))!;
                json["runtimeOptions"]!["configProperties"]!["Daemon.NativeDetachStage"] = false;
                File.WriteAllText(config, json.ToJsonString());
                break;
        }

        List<Exec> execs = TracedStartAndStop(program);

        Assert.That(execs.Where(e => e.Ok && e.Path == program).Count(), Is.EqualTo(3), "launcher, managed detach stage, daemon: " + string.Join("; ", execs));
        Assert.That(execs.Where(e => e.Ok && e.Path == stage), Is.Empty);
        Assert.That(_daemon.Log, Does.Contain("ready"));
    }

    [TestCase("")]
    [TestCase("-DDAEMON_NET_STAGE_EXECUTABLE")]
    public void BothBuildsOfTheStage_CompileWithoutAWarning(string define)
    {
        // The builds themselves do not use -Werror (a newer compiler's new warning must not break
        // a user's build); this keeps the source clean instead.
        var args = new List<string> { "-Wall", "-Wextra", "-Werror", "-fsyntax-only", TestEnvironment.DetachStageSource };
        if (define.Length > 0)
        {
            args.Insert(0, define);
        }

        CommandResult compiled = _daemon.Exec(args, null, program: TestEnvironment.RequireTool("/usr/bin/gcc"));
        Assert.That(compiled.ExitCode, Is.EqualTo(0), compiled.ToString());
        Assert.That(compiled.Error, Is.Empty);
    }

    [Test]
    public void TheStageRunByHand_RefusesWithOneLine()
    {
        CommandResult plain = _daemon.Exec(Array.Empty<string>(), null, program: StageBesideTheExample);
        var forged = new Dictionary<string, string?> { ["DAEMON_NET_STAGE"] = "detach", ["DAEMON_NET_READY_FD"] = "1:12345" };
        CommandResult withAForgedMarker = _daemon.Exec(new[] { "/bin/true" }, forged, program: StageBesideTheExample);

        // A real write-only pipe at a descriptor above 2, but not the inode the marker names.
        var wrongPipe = new Dictionary<string, string?> { ["STAGE"] = StageBesideTheExample };
        CommandResult withAnotherPipe = _daemon.Exec(
            new[] { "-c", "exec 5> >(cat >/dev/null); DAEMON_NET_STAGE=detach DAEMON_NET_READY_FD=5:1 exec -a /bin/true \"$STAGE\"" },
            wrongPipe,
            program: "/bin/bash");

        foreach (CommandResult result in new[] { plain, withAForgedMarker, withAnotherPipe })
        {
            Assert.That(result.AssertOneClearLine(2), Does.StartWith("daemon-net-stage: "));
            Assert.That(result.Output, Is.Empty);
        }
    }

    private List<Exec> TracedStartAndStop(string program)
    {
        _daemon.ProgramPath = program;
        return TracedStartAndStop(_daemon);
    }

    /// <summary>
    /// <paramref name="daemon"/>'s <c>start</c> under strace, then its
    /// <c>stop</c>, and the execve calls of every process of it. strace follows the daemon too, so
    /// it ends only when the daemon has.
    /// </summary>
    internal static List<Exec> TracedStartAndStop(ExampleDaemon daemon)
    {
        string program = daemon.ProgramPath;
        TestEnvironment.RequireTool(Strace);
        string trace = Path.Combine(daemon.Folder, "execve.trace");
        string output = Path.Combine(daemon.Folder, "start.out");

        // strace's own streams are files: what start prints is read from there once it is ready.
        var args = new List<string> { "-c", "exec \"$0\" \"$@\" </dev/null >\"$OUTPUT\" 2>&1", Strace, "-f", "-qq", "-s", "4096", "-e", "trace=execve", "-e", "signal=none", "-o", trace, program, "start" };
        args.AddRange(daemon.CommonOptions);
        using var strace = daemon.Launch(args, new Dictionary<string, string?> { ["OUTPUT"] = output }, program: "/bin/sh");
        Assert.That(ExampleDaemon.Eventually(() => File.Exists(output) && File.ReadAllText(output).Contains('\n', StringComparison.Ordinal), TimeSpan.FromSeconds(60)), Is.True, "start said something");
        Assert.That(File.ReadAllText(output), Does.StartWith("started (pid "));
        daemon.ReadPid();

        CommandResult stop = daemon.Run("stop");
        Assert.That(stop.ExitCode, Is.EqualTo(0), stop.ToString());
        Assert.That(strace.WaitForExit(60_000), Is.True, "strace ends with the daemon");

        var execs = new List<Exec>();
        foreach (Match m in Regex.Matches(File.ReadAllText(trace), @"^\d+\s+execve\(""([^""]*)"", \[""([^""]*)""[^\n]*\) = (-?\d+)", RegexOptions.Multiline))
        {
            execs.Add(new Exec(m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value == "0"));
        }

        return execs;
    }

    /// <summary>What a stage built from detach_stage.c as it is now carries (build-stage.sh puts it in).</summary>
    internal static string SourceId =>
        "daemon-net-stage source sha256 " + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(TestEnvironment.DetachStageSource)));

    /// <summary>One execve: the file, its argv[0], and whether it succeeded.</summary>
    internal sealed record Exec(string Path, string Argv0, bool Ok);

    /// <summary>What an ELF header says, read by hand.</summary>
    internal static class Elf
    {
        private const int PtInterp = 3;
        private const int EtDyn = 3;

        public static int Machine(byte[] file) => BitConverter.ToUInt16(file, 18);

        public static int MachineOf(Architecture architecture) => architecture switch
        {
            Architecture.X64 => 62,
            Architecture.Arm64 => 183,
            _ => -1,
        };

        /// <summary>Position-independent (ET_DYN) with no program interpreter: static-pie.</summary>
        public static bool IsStaticPie(byte[] file)
        {
            Assert.That(file.AsSpan(0, 4).ToArray(), Is.EqualTo(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }), "an ELF file");
            Assert.That(file[4], Is.EqualTo(2), "64-bit");
            long programHeaders = BitConverter.ToInt64(file, 32);
            int entrySize = BitConverter.ToUInt16(file, 54);
            int count = BitConverter.ToUInt16(file, 56);
            bool interpreter = Enumerable.Range(0, count).Any(i => BitConverter.ToUInt32(file, (int)programHeaders + (i * entrySize)) == PtInterp);
            return BitConverter.ToUInt16(file, 16) == EtDyn && !interpreter;
        }
    }
}
