using DaemonTemplate;

return new TemplateDaemonClass().Main(args);
