using Daemon.Example;

return new EchoDaemon().Main(args);
