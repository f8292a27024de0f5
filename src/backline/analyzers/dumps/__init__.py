"""backline.analyzers.dumps"""
